// Device twins over CoAP against a real `hubgate run` (docs/coap.md, "Device twins"): libcoap's
// coap-client-openssl plays the device on a plain `coap` and a DTLS-PSK `coaps` listener (GET of the
// twin, PATCH / POST of reported properties, Observe of the desired ones), mosquitto plays the hub
// that changes a device's desired properties through the gateway's own twin (mqtt profile).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/coap_client.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/mosquitto.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kKey = "Y29hcC10d2luLXRlc3Qta2V5LTAxMjM0NTY3ODlhYg==";

// The payload coap-client printed for the last PDU carrying `code` ("... c:2.05 ... :: '{...}'"),
// parsed as JSON (discarded when there is none).
json payload_of(const RunResult& r, const std::string& code, const std::string& containing = {}) {
    json out = json::value_t::discarded;
    std::size_t at = 0;
    while ((at = r.output.find("c:" + code + " ", at)) != std::string::npos) {
        const auto end = r.output.find('\n', at);
        const std::string line = r.output.substr(at, end == std::string::npos ? std::string::npos : end - at);
        at = end;
        const auto open = line.find(":: '");
        if (open == std::string::npos || line.back() != '\'') continue;
        const std::string text = line.substr(open + 4, line.size() - open - 5);
        if (!containing.empty() && text.find(containing) == std::string::npos) continue;
        out = json::parse(text, nullptr, false);
        if (end == std::string::npos) break;
    }
    return out;
}

// A gateway with a plain `coap` listener (auth none), a `coaps` listener (DTLS-PSK) and devices
// dev-1 and dev-2 (sharing kKey); `upstream_url` may name a test hub.
struct TwinCoapRig {
    explicit TwinCoapRig(const std::string& upstream_url = "tcp://127.0.0.1:9") {
        const std::string extra = listener_toml("coap", coap_port, "none") + listener_toml("coaps", coaps_port, "psk") +
                                  device_toml("dev-1", kKey) + device_toml("dev-2", kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra, {}, upstream_url), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    }
    std::string uri(const std::string& device, const std::string& rest, bool dtls = false) const {
        return std::string(dtls ? "coaps" : "coap") + "://127.0.0.1:" + std::to_string(dtls ? coaps_port : coap_port) +
               "/devices/" + device + "/twin" + rest;
    }
    static std::vector<std::string> psk(const std::string& identity) { return {"-u", identity, "-k", kKey}; }

    // GET devices/{id}/twin: the 2.05 document (a failed check if there is none).
    json twin(const std::string& device) {
        const auto r = coap_client("get", uri(device, ""));
        INFO(r.output);
        CHECK(has_code(r, "2.05"));
        CHECK(has(r, "Content-Format:application/json"));
        const auto doc = payload_of(r, "2.05");
        CHECK(doc.is_object());
        return doc;
    }
    RunResult patch(const std::string& device, const std::string& body, std::vector<std::string> extra = {},
                    const std::string& method = "patch") {
        extra.insert(extra.end(), {"-e", body});
        return coap_client(method, uri(device, "/reported"), extra);
    }

    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t coap_port = free_udp_port();
    std::uint16_t coaps_port = free_udp_port();
    std::unique_ptr<Gateway> gw;
};

}  // namespace

TEST_SUITE("coap twins") {

TEST_CASE("a GET of a fresh device's twin answers 2.05 application/json with empty documents at version 1") {
    TwinCoapRig rig;
    CHECK(rig.twin("fresh-1") == json::parse(R"({"desired":{"$version":1},"reported":{"$version":1}})"));
    const auto r = coap_client("get", rig.uri("dev-1", "/desired", true), TwinCoapRig::psk("dev-1"));
    INFO(r.output);
    CHECK(has_code(r, "2.05"));
    CHECK(payload_of(r, "2.05") == json::parse(R"({"$version":1})"));
}

TEST_CASE("a reported PATCH is answered 2.04 with its version, merges into the twin, and devices show prints it") {
    TwinCoapRig rig;
    auto r = rig.patch("thermo-1", R"({"fw":"1.2","temp":{"max":30,"min":5}})", {"-t", "50"});
    INFO(r.output);
    REQUIRE(has_code(r, "2.04"));
    const auto first = payload_of(r, "2.04");
    REQUIRE(first.contains("$version"));
    // POST does the same for clients without PATCH; null deletes (JSON merge-patch).
    r = rig.patch("thermo-1", R"({"temp":{"min":null}})", {}, "post");
    INFO(r.output);
    REQUIRE(has_code(r, "2.04"));
    const auto second = payload_of(r, "2.04");
    CHECK(second["$version"].get<int>() == first["$version"].get<int>() + 1);

    const auto t = rig.twin("thermo-1");
    CHECK(t["reported"]["fw"] == "1.2");
    CHECK(t["reported"]["temp"] == json::parse(R"({"max":30})"));
    CHECK(t["reported"]["$version"] == second["$version"]);
    CHECK(t["desired"] == json::parse(R"({"$version":1})"));

    const auto shown = run({HUBGATE_BINARY, "devices", "show", "thermo-1", "-c", rig.gw->config_path()});
    INFO(shown.output);
    CHECK(shown.exit_code == 0);
    CHECK(shown.output.find("\"fw\": \"1.2\"") != std::string::npos);
    CHECK(shown.output.find("\"max\": 30") != std::string::npos);
}

TEST_CASE("a reported patch answered 2.04 survives a SIGKILL of the gateway") {
    TwinCoapRig rig;
    const auto r = rig.patch("dev-1", R"({"battery":87})", TwinCoapRig::psk("dev-1"));
    INFO(r.output);
    REQUIRE(has_code(r, "2.04"));
    rig.gw->kill_and_restart();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    const auto t = rig.twin("dev-1");
    CHECK(t["reported"]["battery"] == 87);
    CHECK(t["reported"]["$version"] == payload_of(r, "2.04")["$version"]);
}

TEST_CASE("a patch that is not an object, holds a $ key or nests over 10 levels is 4.00 and nothing is written") {
    TwinCoapRig rig;
    REQUIRE(has_code(rig.patch("valve-1", R"({"open":true})"), "2.04"));
    const auto before = rig.twin("valve-1");
    std::string deep = "1";
    for (int i = 0; i < 11; ++i) deep = "{\"d\":" + deep + "}";
    for (const std::string& bad : {std::string("[1,2]"), std::string(R"({"$bad":1})"), deep, std::string("{not json")}) {
        const auto r = rig.patch("valve-1", bad);
        INFO(bad);
        INFO(r.output);
        CHECK(has_code(r, "4.00"));
        const auto err = payload_of(r, "4.00");
        CHECK(err.contains("errorCode"));
        CHECK(err.contains("message"));
    }
    // A Content-Format that is not JSON is refused before the body is read.
    const auto r = rig.patch("valve-1", R"({"open":false})", {"-t", "0"});
    INFO(r.output);
    CHECK(has_code(r, "4.15"));
    CHECK(rig.twin("valve-1") == before);
    CHECK(rig.gw->metric(R"(hubgate_coap_refused_total{reason="bad_twin_patch"})") == 4);
    CHECK(rig.gw->metric(R"(hubgate_coap_refused_total{reason="bad_format"})") == 1);
}

TEST_CASE("a twin request for another device than the DTLS-PSK identity is 4.03 and changes nothing") {
    TwinCoapRig rig;
    auto r = coap_client("patch", rig.uri("dev-2", "/reported", true),
                         {"-u", "dev-1", "-k", kKey, "-e", R"({"spoofed":true})"});
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    CHECK_FALSE(has_code(r, "2.04"));
    r = coap_client("get", rig.uri("dev-2", "", true), TwinCoapRig::psk("dev-1"));
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    r = coap_client("get", rig.uri("dev-2", "/desired", true), TwinCoapRig::psk("dev-1"));
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    CHECK(rig.gw->metric(R"(hubgate_coap_refused_total{reason="spoofed_path"})") == 3);
    // dev-2 itself still reads an untouched twin.
    r = coap_client("get", rig.uri("dev-2", "", true), TwinCoapRig::psk("dev-2"));
    INFO(r.output);
    CHECK(payload_of(r, "2.05") == json::parse(R"({"desired":{"$version":1},"reported":{"$version":1}})"));
}

TEST_CASE("a patch larger than a block arrives with Block1 and a GET of the big twin is served block-wise") {
    TwinCoapRig rig;
    json big = json::object();
    for (int i = 0; i < 60; ++i) big["sensor" + std::to_string(i)] = std::string(24, static_cast<char>('a' + i % 26));
    const auto r = rig.patch("big-1", big.dump(), {"-b", "256", "-t", "50"});
    INFO(r.output);
    REQUIRE(has_code(r, "2.04"));
    CHECK(has(r, "Block1:"));
    // The document is over one PDU: a plain GET is told to repeat (5.03 Max-Age 0) and the repeat
    // gets it piggy-backed, block-wise (libcoap 4.3.1 clients cannot follow Block2 in a separate
    // response). The body goes to a file: -v 6 prints each block.
    json got = json::value_t::discarded;
    for (int i = 0; i < 5 && got.is_discarded(); ++i) {
        const auto g = coap_client("get", rig.uri("big-1", ""), {"-o", rig.dir.file("twin.json")});
        INFO(g.output);
        if (has_code(g, "2.05")) {
            CHECK(has(g, "Block2:"));
            got = json::parse(rig.dir.read("twin.json"), nullptr, false);
        } else {
            CHECK(has_code(g, "5.03"));
            CHECK(has(g, "Max-Age:0"));
        }
    }
    REQUIRE(got.is_object());
    big["$version"] = 2;  // the empty document was version 1
    CHECK(got["reported"] == big);
}

TEST_CASE("a desired change made at the hub reaches an Observe of devices/{id}/twin/desired as the whole document") {
    TempDir hub_dir;
    Mosquitto hub(hub_dir);
    hub.start();
    TwinCoapRig rig(hub.url());
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->metric("hubgate_upstream_connected") == 1; }, 15s),
                    rig.gw->process().output());
    Process observer({"coap-client-openssl", "-m", "get", "-v", "6", "-B", "60", "-s", "55", "-u", "dev-1", "-k", kKey,
                      rig.uri("dev-1", "/desired", true)});
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->metric("hubgate_coap_twin_observers") == 1; }, 10s),
                    observer.output());
    const auto publish = [&](int version, const std::string& devices) {
        const auto r = run({"mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(hub.port()),
                            "-q", "1", "-t",
                            "devices/gw-test/$iothub/twin/PATCH/properties/desired/?$version=" + std::to_string(version),
                            "-m", R"({"devices":)" + devices + R"(,"$version":)" + std::to_string(version) + "}"});
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    };
    publish(2, R"({"dev-1":{"interval":30}})");
    REQUIRE_MESSAGE(eventually([&] { return observer.output().find("\"interval\":30") != std::string::npos; }, 10s),
                    observer.output() << rig.gw->process().output());
    publish(3, R"({"dev-1":{"mode":"eco"},"dev-2":{"other":1}})");
    REQUIRE_MESSAGE(eventually([&] { return observer.output().find("\"mode\":\"eco\"") != std::string::npos; }, 10s),
                    observer.output() << rig.gw->process().output());
    const RunResult seen{0, observer.output()};
    INFO(seen.output);
    // The registration's answer, then one notification per change, each the whole document.
    CHECK(payload_of(seen, "2.05", "\"$version\":1}") == json::parse(R"({"$version":1})"));
    const auto first = payload_of(seen, "2.05", "\"interval\":30}");  // the first change alone
    const auto last = payload_of(seen, "2.05", "eco");
    CHECK(first["interval"] == 30);
    CHECK(last == json{{"interval", 30}, {"mode", "eco"}, {"$version", last["$version"]}});
    CHECK(last["$version"].get<int>() == first["$version"].get<int>() + 1);
    CHECK(has(seen, "Observe:"));
    CHECK(seen.output.find("other") == std::string::npos);  // dev-2's change is not dev-1's
    CHECK(seen.output.find("c:4.") == std::string::npos);
    CHECK(seen.output.find("c:5.") == std::string::npos);
    // A GET after the change reads the same document.
    CHECK(rig.twin("dev-1")["desired"] == last);
}

}  // TEST_SUITE
