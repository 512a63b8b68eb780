// Translation rules over CoAP, end to end: coap-client-openssl POSTs the payloads of tests/data/ (RFC
// 8428's SenML examples in JSON and CBOR, RFC 8949's CBOR test vectors, a documented JSON reading) with
// their Content-Format (-t) to rule paths of a real `hubgate run`; a real mosquitto plays the hub, and
// what it receives is decoded back into hub messages and checked: device id, module id, application
// properties, content type and encoding, creation time, body.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/coap_client.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/translate_corpus.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kKey = "Z3JlZW5ob3VzZS10ZXN0LWtleS1ub3Qtc2VjcmV0LTE=";

// cbor-coap.toml's rule for an open listener: the device id from the path, any Content-Format.
constexpr const char* kReadingsRule = R"([[rule]]
name = "readings"
listeners = ["lan-coap"]
path = "/readings/{device}"
format = "auto"
device = "{device}"
module = "sensors"
properties = { source = "cbor-sensor" }
)";

// senml-coap.toml's rule for DTLS devices, which name themselves in the path.
constexpr const char* kDtlsSenmlRule = R"([[rule]]
name = "senml-dtls"
listeners = ["lan-dtls"]
path = "/sensors/{device}"
format = "senml"
device = "{device}"
module = "senml"
properties = { source = "senml" }
on_decode_error = "refuse"
)";

// A hub (mosquitto + listener) and a gateway with senml-coap.toml's listener ("lan-coap": coap,
// auth = "none", unmatched = "refuse") and rules, kReadingsRule on the same listener, and
// cbor-coap.toml's DTLS listener ("lan-dtls": coaps, auth = "psk") and rules for device greenhouse,
// with kDtlsSenmlRule.
struct Rig : C2dHub {
    Rig() {
        std::string extra =
            listener_toml("coap", coap_port, "none", "senml", "name = \"lan-coap\"\nunmatched = \"refuse\"\n");
        extra += listener_toml("coaps", coaps_port, "psk", "sensors", "name = \"lan-dtls\"\n");
        extra += device_toml("greenhouse", kKey, "sensors");
        extra += example_rules("senml-coap") + kReadingsRule + "\n" + example_rules("cbor-coap") + kDtlsSenmlRule;
        start_gateway(extra);
    }

    std::string uri(const std::string& path_and_query) const {
        return "coap://127.0.0.1:" + std::to_string(coap_port) + path_and_query;
    }
    // POST `file` (a path) with Content-Format `cf`.
    RunResult post(const std::string& path_and_query, const std::string& cf, const std::string& file) const {
        return coap_client("post", uri(path_and_query), {"-t", cf, "-f", file});
    }
    double translated(const std::string& rule, const std::string& outcome) {
        return gw->metric("hubgate_translate_messages_total{rule=\"" + rule + "\",outcome=\"" + outcome + "\"}");
    }
    std::optional<HubMessage> from(const std::string& device_id) { return wait_from_device(*reader, device_id); }

    std::uint16_t coap_port = free_udp_port();
    std::uint16_t coaps_port = free_udp_port();
};

// The bytes of an RFC 8949 Appendix A test vector (tests/data/cbor/appendix_a.json) by its hex, and
// the JSON value the vector says it decodes to.
struct CborVector {
    std::string bytes;
    json decoded;
};

CborVector cbor_vector(const std::string& hex) {
    const json vectors = json::parse(corpus("cbor/appendix_a.json"));
    for (const auto& v : vectors) {
        if (v.at("hex") != hex) continue;
        CborVector out;
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
            out.bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
        out.decoded = v.at("decoded");
        return out;
    }
    FAIL("appendix_a.json has no vector " << hex);
    return {};
}

// Epoch seconds (with a fraction) as ISO-8601 UTC with milliseconds.
std::string iso8601_ms(double seconds) {
    const auto ms = static_cast<std::int64_t>(seconds * 1000.0 + 0.5);
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

double now_seconds() {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) /
           1000.0;
}

}  // namespace

TEST_CASE("SenML JSON (110) and SenML CBOR (112) of RFC 8428 §5.1.3's pack are answered 2.04 and arrive as §5.1.4's "
          "resolved records, with the first record's time as creation time") {
    Rig rig;
    const json resolved = json::parse(corpus("senml/rfc8428-5.1.4-resolved-data.json"));
    const auto from_json =
        rig.post("/sensors/soil-7", "110", corpus_path("senml/rfc8428-5.1.3-multiple-measurements.json"));
    INFO(from_json.output);
    CHECK(has_code(from_json, "2.04"));
    const auto from_cbor =
        rig.post("/sensors/soil-8", "112", corpus_path("senml/rfc8428-5.1.3-multiple-measurements.cbor"));
    INFO(from_cbor.output);
    CHECK(has_code(from_cbor, "2.04"));

    const std::vector<std::pair<std::string, std::string>> arrivals{{"soil-7", "application/senml+json"},
                                                                    {"soil-8", "application/senml+cbor"}};
    for (const auto& arrival : arrivals) {
        const std::string& device = arrival.first;
        const std::string& media = arrival.second;
        CAPTURE(device);
        const auto m = rig.from(device);
        REQUIRE_MESSAGE(m, rig.gw->process().output());
        CHECK(json::parse(m->body) == resolved);
        CHECK(m->module_id == "senml");
        CHECK(m->system.content_type == "application/json");
        CHECK(m->system.content_encoding == "utf-8");
        CHECK(m->system.creation_time == "2011-10-31T13:24:24Z");  // bt 1.320067464e+09
        CHECK(properties_text(*m) == "source=senml, source-content-type=" + media);
    }
    CHECK(rig.translated("senml", "accepted") == 2);
}

TEST_CASE("a SenML pack without times is taken at the receive time, and Uri-Query options become application "
          "properties") {
    Rig rig;
    // RFC 8428 §5.1.2's first example: a base name, no times at all.
    const double before = now_seconds();
    const auto r = rig.post("/sensors/soil-7?site=north&rack=3&%24.mid=soil-7-0001&%24.ct=text%2Fplain", "110",
                            corpus_path("senml/rfc8428-5.1.2-multiple-data-points.json"));
    const double after = now_seconds();
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    const auto m = rig.from("soil-7");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(properties_text(*m) == "source=senml, site=north, rack=3, source-content-type=application/senml+json");
    CHECK(m->system.message_id == "soil-7-0001");         // system properties from the query too,
    CHECK(m->system.content_type == "application/json");  // but the rule's content type stays
    CHECK(m->system.content_encoding == "utf-8");
    const json got = json::parse(m->body);
    // The RFC authors resolved it at 1498780179 s: the same records but for the time.
    json expected = json::parse(corpus("senml/rfc8428-5.1.2-multiple-data-points.resolved.json"));
    REQUIRE(got.size() == expected.size());
    const double t = got.at(0).at("t").get<double>();
    CHECK(t >= before - 0.001);
    CHECK(t <= after + 0.001);
    for (auto& e : expected) e["t"] = t;
    CHECK(got == expected);
    CHECK(m->system.creation_time == iso8601_ms(t));
}

TEST_CASE("plain CBOR (60) to a rule path arrives as JSON (RFC 8949 §6.1), with source-content-type "
          "application/cbor") {
    Rig rig;
    // RFC 8949 Appendix A: {_ "Fun": true, "Amt": -2} (indefinite length) and {"a": 1, "b": [2, 3]}.
    const auto fun = cbor_vector("bf6346756ef563416d7421ff");
    const auto ab = cbor_vector("a26161016162820203");
    const auto r1 = rig.post("/readings/bench-1", "60", rig.dir.write("fun.cbor", fun.bytes));
    INFO(r1.output);
    CHECK(has_code(r1, "2.04"));
    const auto r2 = rig.post("/readings/bench-2", "60", rig.dir.write("ab.cbor", ab.bytes));
    INFO(r2.output);
    CHECK(has_code(r2, "2.04"));

    const auto a = rig.from("bench-1");
    REQUIRE_MESSAGE(a, rig.gw->process().output());
    CHECK(a->body == R"({"Amt":-2,"Fun":true})");  // members in sorted order
    CHECK(json::parse(a->body) == fun.decoded);
    CHECK(a->module_id == "sensors");
    CHECK(a->system.content_type == "application/json");
    CHECK(a->system.content_encoding == "utf-8");
    CHECK(properties_text(*a) == "source=cbor-sensor, source-content-type=application/cbor");
    const auto b = rig.from("bench-2");
    REQUIRE(b);
    CHECK(b->body == R"({"a":1,"b":[2,3]})");
    CHECK(json::parse(b->body) == ab.decoded);
}

TEST_CASE("JSON (50) to a rule path arrives byte for byte, without source-content-type") {
    Rig rig;
    const std::string file = "zigbee2mqtt/device_WSDCGQ01LM.json";
    const auto r = rig.post("/readings/bench-3", "50", corpus_path(file));
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    const auto m = rig.from("bench-3");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == corpus(file));
    CHECK(m->module_id == "sensors");
    CHECK(m->system.content_type == "application/json");
    CHECK(m->system.content_encoding == "utf-8");
    CHECK(properties_text(*m) == "source=cbor-sensor");
}

TEST_CASE("PUT to a rule path is translated as POST is") {
    Rig rig;
    const auto r = coap_client("put", rig.uri("/sensors/soil-9"),
                               {"-t", "110", "-f", corpus_path("senml/rfc8428-5.1.2-relative-times.json")});
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    const auto m = rig.from("soil-9");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    // RFC 8428 §5.1.2's base time and relative times, resolved; bver 5 stays in every record (§4.6).
    const json got = json::parse(m->body);
    REQUIRE(got.size() == 7);
    CHECK(got.front() ==
          json::parse(R"({"bver":5,"n":"urn:dev:ow:10e2073a0108006:current","u":"A","t":1276020071.001,"v":1.2})"));
    CHECK(m->system.creation_time == iso8601_ms(1276020071.001));
    CHECK(properties_text(*m) == "source=senml, source-content-type=application/senml+json");
}

TEST_CASE("plain CBOR over DTLS (cbor-coap.toml): the device is the PSK identity") {
    Rig rig;
    const auto fun = cbor_vector("bf6346756ef563416d7421ff");
    const std::string file = rig.dir.write("fun.cbor", fun.bytes);
    const auto r = coap_client("post", "coaps://127.0.0.1:" + std::to_string(rig.coaps_port) + "/readings",
                               {"-t", "60", "-f", file, "-u", "greenhouse", "-k", kKey});
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    const auto m = rig.from("greenhouse");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == R"({"Amt":-2,"Fun":true})");
    CHECK(m->module_id == "sensors");
    CHECK(m->system.content_type == "application/json");
    CHECK(properties_text(*m) == "source=cbor-sensor, source-content-type=application/cbor");
    CHECK(rig.translated("cbor-readings", "accepted") == 1);
}

TEST_CASE("a DTLS device naming another device through a rule is answered 4.03, and naming itself 2.04") {
    Rig rig;
    const std::string pack = corpus_path("senml/rfc8428-5.1.1-single-data-point.json");
    const auto coaps = [&](const std::string& path) {
        return coap_client("post", "coaps://127.0.0.1:" + std::to_string(rig.coaps_port) + path,
                           {"-t", "110", "-f", pack, "-u", "greenhouse", "-k", kKey});
    };
    const auto spoof = coaps("/sensors/cellar");
    INFO(spoof.output);
    CHECK(has_code(spoof, "4.03"));
    CHECK(rig.translated("senml-dtls", "spoof") == 1);
    const auto own = coaps("/sensors/greenhouse");
    INFO(own.output);
    CHECK(has_code(own, "2.04"));
    const auto m = rig.from("greenhouse");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->module_id == "senml");
    CHECK(properties_text(*m) == "source=senml, source-content-type=application/senml+json");
    CHECK(hub_telemetry(*rig.reader).size() == 1);  // nothing for cellar
}

// ---- refusals: each answered at once, nothing stored ---------------------------------------------

namespace {

// After a refusal: a good request from another device, which must then be the only message at the hub.
void only_the_next_one_arrives(Rig& rig) {
    const auto r = rig.post("/sensors/marker-1", "110", corpus_path("senml/rfc8428-5.1.1-single-data-point.json"));
    INFO(r.output);
    REQUIRE(has_code(r, "2.04"));
    REQUIRE_MESSAGE(rig.from("marker-1"), rig.gw->process().output());
    const auto all = hub_telemetry(*rig.reader);
    CHECK(all.size() == 1);
}

}  // namespace

TEST_CASE("a payload the rule cannot decode, under on_decode_error = \"refuse\", is answered 4.00 and not stored") {
    Rig rig;
    // A Tasmota SENSOR object posted as SenML: JSON, but not an array of records.
    const auto r = rig.post("/sensors/soil-7", "110", corpus_path("tasmota/tele_SENSOR_ds18b20.json"));
    INFO(r.output);
    CHECK(has_code(r, "4.00"));
    CHECK(rig.translated("senml", "refused_decode") == 1);
    only_the_next_one_arrives(rig);
}

TEST_CASE("a Content-Format the rule cannot decode is answered 4.15 and not stored") {
    Rig rig;
    // A text reading (Content-Format 0) to the SenML rule.
    const auto r = rig.post("/sensors/soil-7", "0", corpus_path("homie/engine_temperature.txt"));
    INFO(r.output);
    CHECK(has_code(r, "4.15"));
    CHECK(rig.translated("senml", "refused_format") == 1);
    only_the_next_one_arrives(rig);
}

TEST_CASE("a path no rule matches is answered 4.04 under unmatched = \"refuse\" and not stored") {
    Rig rig;
    const auto r = rig.post("/telemetry/soil-7", "110", corpus_path("senml/rfc8428-5.1.2-multiple-data-points.json"));
    INFO(r.output);
    CHECK(has_code(r, "4.04"));
    CHECK(rig.gw->metric("hubgate_translate_unmatched_total{listener=\"lan-coap\",action=\"refuse\"}") == 1);
    only_the_next_one_arrives(rig);
}
