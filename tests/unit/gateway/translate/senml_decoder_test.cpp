// The `senml` decoder: RFC 8428 packs (the RFC's own examples, tests/data/senml/) resolve to the
// records of §4.6, from JSON and from CBOR alike.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "gateway/translate/decoder.hpp"
#include "tests/unit/gateway/translate/payloads.hpp"

using namespace hubgate::translate;
using hubgate::test::payload;
using nlohmann::json;

namespace {

constexpr std::int64_t receive_ms = 1'700'000'000'000;

Decoded senml(std::string_view bytes, std::optional<std::uint16_t> cf = std::nullopt, std::int64_t now_ms = receive_ms,
              bool want_doc = true) {
    DecodeInput in;
    in.bytes = bytes;
    in.content_format = cf;
    in.receive_ms = now_ms;
    in.want_doc = want_doc;
    return decode(Format::senml, in);
}

json resolved_file(const std::string& name) { return json::parse(payload("senml/" + name)); }

// The decoded records, checked for the body/doc agreement every test relies on.
json records(const Decoded& d) {
    REQUIRE_MESSAGE(d.status == DecodeStatus::ok, d.reason);
    CHECK(d.is_json);
    REQUIRE(d.has_doc);
    CHECK(json::parse(d.body) == d.doc);
    return d.doc;
}

json without(json records, const char* label) {
    for (json& r : records) r.erase(label);
    return records;
}

}  // namespace

TEST_CASE("a SenML pack with a base name and relative times resolves to absolute records") {
    // RFC 8428 §5.1.2: base time 1276020076.001, records 5..1 s before it, version 5.
    const Decoded d = senml(payload("senml/rfc8428-5.1.2-relative-times.json"));
    CHECK(d.source_content_type == "application/senml+json");
    const json got = records(d);
    // The RFC authors' resolved form, with two corrections §4.6 asks for: a version other than 10
    // stays in every record, and records are in chronological order (their file keeps pack order,
    // with the base record, at the latest time, first).
    json expected = resolved_file("rfc8428-5.1.2-relative-times.resolved.json");
    std::stable_sort(expected.begin(), expected.end(),
                     [](const json& a, const json& b) { return a.at("t").get<double>() < b.at("t").get<double>(); });
    CHECK(without(got, "bver") == expected);
    for (const json& r : got) CHECK(r.at("bver") == 5);
    CHECK(d.body.substr(0, d.body.find('}') + 1) ==
          R"([{"bver":5,"n":"urn:dev:ow:10e2073a0108006:current","u":"A","t":1276020071.001,"v":1.2})");
    CHECK(got.back() == json::parse(R"({"bver":5,"n":"urn:dev:ow:10e2073a0108006:current","u":"A",
                                        "t":1276020076.001,"v":1.7})"));
}

TEST_CASE("the RFC's CBOR pack resolves to exactly what its JSON twin resolves to") {
    // RFC 8428 §6 prints the CBOR bytes of §5.1.2's second example.
    const Decoded from_cbor = senml(payload("senml/rfc8428-6-cbor-relative-times.cbor"));
    const Decoded from_json = senml(payload("senml/rfc8428-5.1.2-relative-times.json"));
    CHECK(from_cbor.source_content_type == "application/senml+cbor");
    CHECK(records(from_cbor) == records(from_json));
    CHECK(from_cbor.body == from_json.body);
}

TEST_CASE("RFC 8428 §5.1.3's measurements resolve to §5.1.4's resolved data, from JSON and from CBOR") {
    const json expected = resolved_file("rfc8428-5.1.4-resolved-data.json");
    CHECK(records(senml(payload("senml/rfc8428-5.1.3-multiple-measurements.json"))) == expected);
    CHECK(records(senml(payload("senml/rfc8428-5.1.3-multiple-measurements.cbor"))) == expected);
}

TEST_CASE("a record without a time is taken at the gateway's receive time") {
    // The RFC authors resolved these examples at 1498780179 s; resolving at the same instant agrees.
    const std::int64_t then_ms = 1'498'780'179'000;
    for (const char* name : {"rfc8428-5.1.1-single-data-point", "rfc8428-5.1.2-multiple-data-points"}) {
        CAPTURE(name);
        const Decoded d = senml(payload(std::string("senml/") + name + ".json"), std::nullopt, then_ms);
        CHECK(records(d) == resolved_file(std::string(name) + ".resolved.json"));
    }
    const Decoded d = senml(payload("senml/rfc8428-5.1.1-single-data-point.json"), std::nullopt, 1'700'000'000'123);
    CHECK(d.body == R"([{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","t":1700000000.123,"v":23.1}])");
}

TEST_CASE("a relative time is counted from the receive time, in seconds") {
    const Decoded d = senml(R"([{"n":"a","t":-5,"v":1},{"n":"a","t":-2.5,"v":2},{"n":"a","bt":-60,"t":10,"v":3}])");
    CHECK(records(d) == json::parse(R"([{"n":"a","t":1699999950,"v":3},{"n":"a","t":1699999995,"v":1},
                                        {"n":"a","t":1699999997.5,"v":2}])"));
}

TEST_CASE("records come out in chronological order, records of one time in pack order") {
    const Decoded d = senml(R"([{"bn":"dev:","bt":1600000000,"n":"b","t":20,"v":2},{"n":"a","t":10,"v":1},
                               {"n":"c","t":20,"v":3},{"n":"d","t":5,"v":0}])");
    const json got = records(d);
    REQUIRE(got.size() == 4);
    CHECK(got[0].at("n") == "dev:d");
    CHECK(got[1].at("n") == "dev:a");
    CHECK(got[2].at("n") == "dev:b");
    CHECK(got[3].at("n") == "dev:c");
}

TEST_CASE("a SensML stream resolves like a pack") {
    const Decoded d = senml(payload("senml/rfc8428-5.1.2-sensml-stream.json"), content_format::sensml_json);
    CHECK(d.source_content_type == "application/sensml+json");
    CHECK(records(d) == resolved_file("rfc8428-5.1.2-sensml-stream.resolved.json"));
}

TEST_CASE("string, boolean and data values resolve with the base name, data as base64url") {
    const json got = records(senml(payload("senml/rfc8428-5.1.5-multiple-data-types.json"), std::nullopt, 1'499'109'309'000));
    REQUIRE(got.size() == 4);
    // The RFC authors' resolved file lacks the `vd` record; the other three agree.
    const json expected = resolved_file("rfc8428-5.1.5-multiple-data-types.resolved.json");
    CHECK(json(got.begin(), got.begin() + 3) == expected);
    CHECK(got[3] == json::parse(R"({"n":"urn:dev:ow:10e2073a01080063:nfv-reader","t":1499109309,"vd":"aGkgCg"})"));
}

TEST_CASE("a later base name replaces the earlier one while the base time stays") {
    CHECK(records(senml(payload("senml/rfc8428-5.1.6-collection-of-resources.json"))) ==
          resolved_file("rfc8428-5.1.6-collection-of-resources.resolved.json"));
}

TEST_CASE("a record with only base fields sets the bases and yields no record") {
    const Decoded d = senml(payload("senml/rfc8428-5.1.7-setting-an-actuator.json"), std::nullopt, 1'498'780'179'000);
    CHECK(records(d) == resolved_file("rfc8428-5.1.7-setting-an-actuator.resolved.json"));
    CHECK(records(senml(R"([{"bn":"x:","bt":1600000000,"bver":10}])")) == json::array());
}

TEST_CASE("the base unit applies to records without a unit") {
    CHECK(records(senml(payload("senml/rfc8428-5.1.7-lights-on.json"))) ==
          resolved_file("rfc8428-5.1.7-lights-on.resolved.json"));
    const json off = records(senml(payload("senml/rfc8428-5.1.7-lights-off.json")));
    REQUIRE(off.size() == 4);
    CHECK(off[2] == json::parse(R"({"n":"2001:db8::3","u":"/","t":1320078429.1,"v":0})"));
}

TEST_CASE("an unknown regular label is kept, an unknown base label dropped") {
    // A draft example from the RFC's repository with a link label "l".
    CHECK(records(senml(payload("senml/senml-spec-ex8-link-label.json"))) ==
          resolved_file("senml-spec-ex8-link-label.resolved.json"));
    CHECK(senml(R"([{"bfoo":1,"n":"a","v":1,"t":1600000000,"xyz":"k"}])").body ==
          R"([{"n":"a","t":1600000000,"v":1,"xyz":"k"}])");
}

TEST_CASE("the base value is added to v and the base sum only to records that have s") {
    const Decoded d = senml(R"([{"bn":"m:","bt":1600000000,"bv":20,"bs":100,"n":"a","v":1.5},
                               {"n":"b","s":5},{"n":"c","v":2,"s":0.5},{"n":"d","vs":"x"}])");
    CHECK(records(d) == json::parse(R"([{"n":"m:a","t":1600000000,"v":21.5},{"n":"m:b","t":1600000000,"s":105},
                                        {"n":"m:c","t":1600000000,"v":22,"s":100.5},{"n":"m:d","t":1600000000,"vs":"x"}])"));
}

TEST_CASE("the update time is kept as it is") {
    CHECK(senml(R"([{"n":"a","v":1,"t":1600000000,"ut":300}])").body == R"([{"n":"a","t":1600000000,"v":1,"ut":300}])");
}

TEST_CASE("packs that break RFC 8428 are decode errors with a reason") {
    auto reason = [](std::string_view text) {
        const Decoded d = senml(text);
        CHECK(d.status == DecodeStatus::bad_payload);
        return d.reason;
    };
    CHECK(reason(R"({"n":"a","v":1})").find("CBOR") != std::string::npos);  // sniffed as CBOR: no `[`
    CHECK(senml(R"({"n":"a","v":1})", content_format::senml_json).reason == "a SenML pack must be an array");
    CHECK(reason("[]") == "an empty SenML pack");
    CHECK(reason("[1]") == "SenML record 0: not an object");
    CHECK(reason(R"([{"n":"a","v":"1"}])") == "SenML record 0: \"v\" must be a number");
    CHECK(reason(R"([{"n":"a","vb":1}])") == "SenML record 0: \"vb\" must be a boolean");
    CHECK(reason(R"([{"n":"a","vd":"a+b"}])") == "SenML record 0: \"vd\" must be base64url");
    CHECK(reason(R"([{"bn":1,"v":1}])") == "SenML record 0: \"bn\" must be a string");
    CHECK(reason(R"([{"n":"a","v":1,"bver":0}])") == "SenML record 0: \"bver\" must be a positive integer");
    CHECK(reason(R"([{"n":"a","v":1,"bver":11}])") == "SenML record 0: SenML version 11 is newer than 10");
    CHECK(reason(R"([{"n":"a","v":1},{"bver":5,"n":"b","v":1}])") ==
          "SenML record 1: version 5 differs from the pack's 10");
    CHECK(reason(R"([{"n":"a","v":1,"x_":1}])") == "SenML record 0: unsupported must-understand label \"x_\"");
    CHECK(reason(R"([{"n":"a","v":1,"vs":"b"}])") == "SenML record 0: more than one value field");
    CHECK(reason(R"([{"n":"a","t":1}])") == "SenML record 0: no value field and no sum");
    CHECK(reason(R"([{"v":1}])") == "SenML record 0: no name");
    CHECK(reason(R"([{"n":"a b","v":1}])") ==
          "SenML record 0: name \"a b\" has characters RFC 8428 §4.5.1 does not allow");
    CHECK(reason(R"([{"n":"-a","v":1}])").find("§4.5.1") != std::string::npos);
    CHECK(reason(R"([{"n":"a","bv":1e308,"v":1e308}])") == "SenML record 0: \"v\" out of range");
    CHECK(reason(R"([{"n":"a","v":1,"v":2}])") == "duplicate JSON key \"v\"");
    CHECK(reason(R"([{"n":"a","v":1}] x)") == "trailing bytes after JSON at byte 18");
    using namespace std::string_literals;
    CHECK(reason(R"([{"n":"a","v":1}])"s + '\0' + "junk") == "trailing bytes after JSON at byte 17");
}

TEST_CASE("SenML CBOR that breaks RFC 8428 §6 is a decode error") {
    using namespace std::string_literals;
    // [{0: "a", 2: 1, 2: 2}]: a label twice
    CHECK(senml("\x81\xa3\x00\x61\x61\x02\x01\x02\x02"s).reason == "SenML CBOR: duplicate map key \"v\" at byte 8");
    // [{0: "a", 8: "aGk"}]: vd as text, not bytes
    CHECK(senml("\x81\xa2\x00\x61\x61\x08\x63\x61\x47\x6b"s).reason ==
          "SenML CBOR: SenML \"vd\" that is not a byte string at byte 6");
    // [{0: h'61', 2: 1}]: a name as bytes
    CHECK(senml("\x81\xa2\x00\x41\x61\x02\x01"s).reason == "SenML CBOR: SenML \"n\" that is a byte string at byte 3");
    // [{0: "a", 2: 1, 9: 7}]: an integer label Table 4 does not define is dropped
    CHECK(senml("\x81\xa3\x00\x61\x61\x02\x01\x09\x07"s).body == R"([{"n":"a","t":1700000000,"v":1}])");
    // [{0: "a", 8: h'010203'}]: vd becomes base64url
    CHECK(senml("\x81\xa2\x00\x61\x61\x08\x43\x01\x02\x03"s).body == R"([{"n":"a","t":1700000000,"vd":"AQID"}])");
    // [{0: "a", 2: 4([-1, 215])}]: a decimal fraction, 21.5
    CHECK(senml("\x81\xa2\x00\x61\x61\x02\xc4\x82\x20\x18\xd7"s).body == R"([{"n":"a","t":1700000000,"v":21.5}])");
}

TEST_CASE("SenML's Content-Formats choose JSON or CBOR, other formats are refused") {
    const std::string cbor = payload("senml/rfc8428-6-cbor-relative-times.cbor");
    const std::string text = payload("senml/rfc8428-5.1.2-relative-times.json");
    CHECK(senml(text, content_format::senml_json).source_content_type == "application/senml+json");
    CHECK(senml(text, content_format::json).source_content_type == "application/senml+json");
    CHECK(senml(cbor, content_format::senml_cbor).source_content_type == "application/senml+cbor");
    CHECK(senml(cbor, content_format::sensml_cbor).source_content_type == "application/sensml+cbor");
    CHECK(senml(cbor, content_format::cbor).status == DecodeStatus::ok);
    CHECK(senml(cbor, content_format::senml_json).status == DecodeStatus::bad_payload);  // the format said JSON
    const Decoded refused = senml(text, content_format::text_plain);
    CHECK(refused.status == DecodeStatus::unsupported_format);
    CHECK(refused.reason == "Content-Format 0 (text/plain) cannot be decoded as senml");
    CHECK(senml(text, std::uint16_t{320}).status == DecodeStatus::unsupported_format);  // senml+exi is not read
    CHECK(senml(" \n" + text).status == DecodeStatus::ok);                             // whitespace before `[`
}

TEST_CASE("auto decodes Content-Formats 110 to 113 as SenML") {
    DecodeInput in;
    const std::string cbor = payload("senml/rfc8428-6-cbor-relative-times.cbor");
    in.bytes = cbor;
    in.content_format = content_format::senml_cbor;
    const Decoded d = decode(Format::automatic, in);
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK(d.source_content_type == "application/senml+cbor");
    CHECK(d.body == senml(payload("senml/rfc8428-5.1.2-relative-times.json")).body);
}

TEST_CASE("without want_doc the senml decoder returns only the body") {
    const Decoded d = senml(payload("senml/rfc8428-5.1.1-single-data-point.json"), std::nullopt, receive_ms, false);
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK_FALSE(d.has_doc);
    CHECK(d.body == R"([{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","t":1700000000,"v":23.1}])");
}
