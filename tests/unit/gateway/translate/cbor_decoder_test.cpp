// The `cbor` decoder: RFC 8949 §6.1's conversion to JSON, checked on the specification's own
// Appendix A examples (tests/data/cbor/appendix_a.json, the CBOR working group's test vectors).
#include <doctest/doctest.h>

#include <string>

#include "gateway/translate/decoder.hpp"
#include "tests/unit/gateway/translate/payloads.hpp"

using namespace hubgate::translate;
using hubgate::test::payload;
using nlohmann::json;

namespace {

std::string unhex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

Decoded cbor(std::string_view bytes, bool want_doc = true, std::optional<std::uint16_t> cf = std::nullopt) {
    DecodeInput in;
    in.bytes = bytes;
    in.content_format = cf;
    in.want_doc = want_doc;
    return decode(Format::cbor, in);
}

Decoded cbor_hex(std::string_view hex) { return cbor(unhex(hex)); }

// The Appendix A vector with this hex encoding.
const json& vector_for(const json& vectors, std::string_view hex) {
    for (const json& v : vectors)
        if (v.at("hex") == hex) return v;
    FAIL("no Appendix A vector " << hex);
    static const json none;
    return none;
}

}  // namespace

TEST_CASE("every RFC 8949 Appendix A example with a JSON value converts to that value") {
    const json vectors = json::parse(payload("cbor/appendix_a.json"));
    int checked = 0;
    for (const json& v : vectors) {
        if (!v.contains("decoded")) continue;
        const std::string hex = v.at("hex");
        // §6.1 turns bignums (tags 2 and 3) into base64url text, not numbers; checked below.
        if (hex == "c249010000000000000000" || hex == "c349010000000000000000") continue;
        CAPTURE(hex);
        const Decoded d = cbor_hex(hex);
        REQUIRE(d.status == DecodeStatus::ok);
        CHECK(d.is_json);
        CHECK(d.source_content_type == "application/cbor");
        REQUIRE(d.has_doc);
        CHECK(d.doc == v.at("decoded"));
        CHECK(json::parse(d.body) == v.at("decoded"));
        ++checked;
    }
    CHECK(checked == 57);
}

TEST_CASE("bignums become base64url text, a negative one with a tilde (RFC 8949 §6.1)") {
    const json vectors = json::parse(payload("cbor/appendix_a.json"));
    CHECK(cbor_hex(vector_for(vectors, "c249010000000000000000").at("hex").get<std::string>()).body == R"("AQAAAAAAAAAA")");
    CHECK(cbor_hex(vector_for(vectors, "c349010000000000000000").at("hex").get<std::string>()).body == R"("~AQAAAAAAAAAA")");
}

TEST_CASE("non-finite floats of every width become null") {
    for (const char* hex : {"f97c00", "f97e00", "f9fc00", "fa7f800000", "fa7fc00000", "faff800000", "fb7ff0000000000000",
                            "fb7ff8000000000000", "fbfff0000000000000"}) {
        CAPTURE(hex);
        const Decoded d = cbor_hex(hex);
        REQUIRE(d.status == DecodeStatus::ok);
        CHECK(d.body == "null");
    }
}

TEST_CASE("undefined and unassigned simple values become null") {
    for (std::string hex : {"f7", "f0", "f820", "f8ff"}) {  // undefined, simple(16), simple(32), simple(255)
        CAPTURE(hex);
        CHECK(cbor_hex(hex).body == "null");
    }
    // RFC 7049's Appendix A (the vectors file) still shows f818 as simple(24); RFC 8949 §3.3 made a
    // two-byte simple value below 32 not well-formed.
    CHECK(cbor_hex("f818").reason == "a simple value in two bytes below 32 (not well-formed) at byte 0");
}

TEST_CASE("tags are dropped and their content kept") {
    CHECK(cbor_hex("c074323031332d30332d32315432303a30343a30305a").body == R"("2013-03-21T20:04:00Z")");
    CHECK(cbor_hex("c11a514b67b0").body == "1363896240");
    CHECK(cbor_hex("c1fb41d452d9ec200000").body == "1363896240.5");
    CHECK(cbor_hex("d82076687474703a2f2f7777772e6578616d706c652e636f6d").body == R"("http://www.example.com")");
    CHECK(cbor_hex("d818456449455446").body == R"("ZElFVEY")");   // 24(h'6449455446'): embedded CBOR stays bytes
    CHECK(cbor_hex("d9d9f7a0").body == "{}");                     // the self-described CBOR tag 55799
    CHECK(cbor_hex("c6a0").body == "{}");                         // tag 6 in the initial byte
}

TEST_CASE("byte strings become base64url without padding, or what tags 21-23 ask for") {
    CHECK(cbor_hex("40").body == R"("")");
    CHECK(cbor_hex("4401020304").body == R"("AQIDBA")");
    CHECK(cbor_hex("5f42010243030405ff").body == R"("AQIDBAU")");  // indefinite length, two chunks
    CHECK(cbor_hex("d74401020304").body == R"("01020304")");         // 23: base16
    CHECK(cbor_hex("d64403fbff00").body == R"("A/v/AA==")");         // 22: base64 with padding
    CHECK(cbor_hex("d5814403fbff00").body == R"(["A_v_AA"])");       // 21 on an array: base64url inside
    CHECK(cbor_hex("d6824403fbff00d5420102").body == R"(["A/v/AA==","AQI"])");  // the innermost hint wins
}

TEST_CASE("map keys that are not text become their JSON text") {
    CHECK(cbor_hex("a201020304").body == R"({"1":2,"3":4})");
    CHECK(cbor_hex("a1f5f4").body == R"({"true":false})");
    CHECK(cbor_hex("a18201020a").body == R"({"[1,2]":10})");
    CHECK(cbor_hex("a1420102f6").body == R"({"AQI":null})");  // a byte-string key: its base64url text
}

TEST_CASE("a map key that is a container becomes its JSON text only up to 256 bytes") {
    // {{{...{0: 0}...: 0}: 0}: 0}: every level would double the escaping of the one inside
    std::string nested = unhex("a10000");
    for (int i = 0; i < 40; ++i) nested = "\xa1" + nested + '\x00';
    const Decoded d = cbor(nested);
    CHECK(d.status == DecodeStatus::bad_payload);
    CHECK(d.reason.find("a map key longer than 256 bytes as JSON text") == 0);
}

TEST_CASE("a map whose keys collide is a decode error") {
    CHECK(cbor_hex("a2616101616102").reason == "duplicate map key \"a\" at byte 6");
    CHECK(cbor_hex("a2016161613102").status == DecodeStatus::bad_payload);  // 1 and "1"
}

TEST_CASE("text strings must be valid UTF-8") {
    CHECK(cbor_hex("62c328").reason == "invalid UTF-8 in a text string at byte 0");
    CHECK(cbor_hex("7f61616180ff").status == DecodeStatus::bad_payload);
}

TEST_CASE("malformed, truncated and trailing CBOR are decode errors with the byte offset") {
    CHECK(cbor_hex("").reason == "empty CBOR payload");
    CHECK(cbor_hex("1c").reason == "invalid CBOR at byte 0");            // reserved additional information
    CHECK(cbor_hex("8301").reason == "truncated CBOR at byte 2");
    CHECK(cbor_hex("1900").reason == "truncated CBOR at byte 0");
    CHECK(cbor_hex("0001").reason == "trailing bytes after CBOR at byte 1");
    CHECK(cbor_hex("ff").reason == "a break outside an indefinite-length item at byte 0");
    CHECK(cbor_hex("8201ff").status == DecodeStatus::bad_payload);        // a break in a definite array
    CHECK(cbor_hex("bf01ff").reason == "a map key without a value at byte 2");
    CHECK(cbor_hex("5f6161ff").status == DecodeStatus::bad_payload);      // a text chunk in a byte string
    CHECK(cbor_hex("5f5f4101ffff").status == DecodeStatus::bad_payload);  // nested indefinite chunks
    CHECK(cbor_hex("c1").reason == "truncated CBOR at byte 1");
    CHECK(cbor_hex("5b00000000ffffffff00").status == DecodeStatus::bad_payload);  // a length beyond the input
    CHECK(cbor_hex("9bffffffffffffffff").status == DecodeStatus::bad_payload);   // 2^64-1 items promised
}

TEST_CASE("nesting deeper than 64 levels is refused before it can exhaust the stack") {
    CHECK(cbor(std::string(64, '\x81') + '\x00').status == DecodeStatus::ok);
    const Decoded deep = cbor(std::string(65, '\x81') + '\x00');
    CHECK(deep.status == DecodeStatus::bad_payload);
    CHECK(deep.reason == "CBOR nested deeper than 64 at byte 64");
    CHECK(cbor(std::string(100000, '\x9f')).status == DecodeStatus::bad_payload);
    CHECK(cbor(std::string(100000, '\xc6') + '\x00').status == DecodeStatus::bad_payload);  // a tag chain
}

TEST_CASE("integers below -2^63 keep their value as a double") {
    CHECK(cbor_hex("3b8000000000000000").doc == -9223372036854775809.0);
    CHECK(cbor_hex("3b7fffffffffffffff").body == "-9223372036854775808");
}

TEST_CASE("SenML CBOR read by the plain cbor format keeps its integer labels as text") {
    const Decoded d = cbor(payload("senml/rfc8428-6-cbor-relative-times.cbor"));
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK(d.doc.at(0).at("-2") == "urn:dev:ow:10e2073a0108006:");
    CHECK(d.doc.at(0).at("-3") == 1276020076.001);
    CHECK(d.doc.at(4).at("2") == 1.5);  // a half-precision float in the RFC's bytes
}

TEST_CASE("without want_doc the cbor decoder returns only the body") {
    const Decoded d = cbor(unhex("a26161016162820203"), false);
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK(d.body == R"({"a":1,"b":[2,3]})");
    CHECK_FALSE(d.has_doc);
}

TEST_CASE("the cbor format accepts no Content-Format or 60 and refuses any other") {
    CHECK(cbor("\xa0", false, content_format::cbor).status == DecodeStatus::ok);
    const Decoded d = cbor("\xa0", false, content_format::senml_cbor);
    CHECK(d.status == DecodeStatus::unsupported_format);
    CHECK(d.reason == "Content-Format 112 (application/senml+cbor) cannot be decoded as cbor");
}

TEST_CASE("auto decodes Content-Format 60 as CBOR") {
    DecodeInput in;
    const std::string bytes = unhex("a201020304");
    in.bytes = bytes;
    in.content_format = content_format::cbor;
    const Decoded d = decode(Format::automatic, in);
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK(d.body == R"({"1":2,"3":4})");
    CHECK(d.source_content_type == "application/cbor");
}
