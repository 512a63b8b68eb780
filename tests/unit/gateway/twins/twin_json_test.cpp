// The JSON side of device twins: RFC 7386 merge-patch (null deletes), the GET document, the key
// encoding of device ids in the gateway's own twin (docs/twins.md).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/twins/twin_json.hpp"

using namespace hubgate::twins;
using nlohmann::json;

namespace {
json merged(const std::string& doc, const std::string& patch) {
    auto r = merge_patch(doc, patch);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error()));
    return json::parse(r.value());
}
}  // namespace

TEST_SUITE("twins") {

TEST_CASE("a merge-patch member set to null deletes it, nested objects merge, other values replace") {
    CHECK(merged(R"({"a":1,"b":{"c":2,"d":3},"e":[1,2]})", R"({"a":null,"b":{"c":null,"x":4},"e":[3]})") ==
          json::parse(R"({"b":{"d":3,"x":4},"e":[3]})"));
}

TEST_CASE("RFC 7386 appendix A examples hold") {
    CHECK(merged(R"({"a":"b"})", R"({"a":"c"})") == json::parse(R"({"a":"c"})"));
    CHECK(merged(R"({"a":"b"})", R"({"b":"c"})") == json::parse(R"({"a":"b","b":"c"})"));
    CHECK(merged(R"({"a":"b"})", R"({"a":null})") == json::parse(R"({})"));
    CHECK(merged(R"({"a":"b","b":"c"})", R"({"a":null})") == json::parse(R"({"b":"c"})"));
    CHECK(merged(R"({"a":["b"]})", R"({"a":"c"})") == json::parse(R"({"a":"c"})"));
    CHECK(merged(R"({"a":"c"})", R"({"a":["b"]})") == json::parse(R"({"a":["b"]})"));
    CHECK(merged(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})") == json::parse(R"({"a":{"b":"d"}})"));
    CHECK(merged(R"({"a":[{"b":"c"}]})", R"({"a":[1]})") == json::parse(R"({"a":[1]})"));
    CHECK(merged(R"({"e":null})", R"({"a":1})") == json::parse(R"({"e":null,"a":1})"));
    CHECK(merged(R"({})", R"({"a":{"bb":{"ccc":null}}})") == json::parse(R"({"a":{"bb":{}}})"));
}

TEST_CASE("a patch that is not a JSON object, holds a $-key or nests over 10 levels is refused") {
    CHECK_FALSE(merge_patch("{}", "not json").ok());
    CHECK_FALSE(merge_patch("{}", "[1]").ok());
    CHECK_FALSE(merge_patch("{}", "").ok());
    CHECK_FALSE(merge_patch("{}", R"({"$version":3})").ok());
    CHECK_FALSE(merge_patch("{}", R"({"a":{"$x":1}})").ok());
    CHECK(merge_patch("{}", R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":{"10":1}}}}}}}}}})").ok());
    CHECK_FALSE(merge_patch("{}", R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":{"10":{"11":1}}}}}}}}}}})").ok());
}

TEST_CASE("the GET document carries both sides with their versions") {
    const auto d = json::parse(twin_document(R"({"interval":30})", 4, "{}", 1));
    CHECK(d == json::parse(R"({"desired":{"interval":30,"$version":4},"reported":{"$version":1}})"));
}

TEST_CASE("a desired notification body is the patch with $version") {
    CHECK(json::parse(with_version(R"({"interval":30})", 7)) == json::parse(R"({"interval":30,"$version":7})"));
}

TEST_CASE("an error body has errorCode and message, quotes escaped") {
    CHECK(json::parse(error_body(400004, "bad \"x\"")) == json::parse(R"({"errorCode":400004,"message":"bad \"x\""})"));
}

TEST_CASE("device ids are keys with % . $ and space percent-encoded, and decode back") {
    CHECK(encode_key("sensor-1") == "sensor-1");
    CHECK(encode_key("a.b$c d%e") == "a%2Eb%24c%20d%25e");
    CHECK(encode_key("%2E") == "%252E");
    for (const std::string id : {"sensor-1", "a.b$c d%e", "%2E", "x.y.z", "$$", "100%"})
        CHECK(decode_key(encode_key(id)) == id);
    CHECK(decode_key("a%2eb") == "a.b");  // lowercase hex too
    CHECK_FALSE(decode_key("a%2").has_value());
    CHECK_FALSE(decode_key("a%zz").has_value());
    CHECK_FALSE(decode_key("%").has_value());
}

}  // TEST_SUITE
