// Device twins through the gateway with the unmodified Azure IoT device SDK for Node
// (azure-iot-device-mqtt, pinned in tests/node): getTwin, a reported update answered after the
// commit and kept across a SIGKILL, and (upstream mapping) a desired change made at the "hub" (a
// mosquitto playing it, mqtt profile) reaching the SDK's properties.desired handler.
// The device app is tests/node/twin_device.js; `npm ci --prefix tests/node` installs the SDK.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/certificates.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_twin.hpp"
#include "tests/support/mosquitto.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const std::string kNodeDir = std::string(HUBGATE_SOURCE_DIR) + "/tests/node";

std::vector<json> events_named(const std::string& output, const std::string& name) {
    std::vector<json> out;
    std::size_t at = 0;
    while (at < output.size()) {
        const auto end = output.find('\n', at);
        auto j = json::parse(output.substr(at, end == std::string::npos ? std::string::npos : end - at), nullptr, false);
        if (j.is_object() && j.value("event", "") == name) out.push_back(std::move(j));
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return out;
}

// A gateway with an mqtts SAS listener and device `twin-dev`; `upstream_url` may name a test hub.
struct TwinRig {
    explicit TwinRig(const std::string& upstream_url = "tcp://127.0.0.1:9") {
        REQUIRE_MESSAGE(std::filesystem::exists(kNodeDir + "/node_modules/azure-iot-device-mqtt"),
                        "the Azure IoT SDK is not installed: run `npm ci --prefix tests/node` (scripts/test.sh does)");
        make_certificates(dir);
        const std::string tls =
            "tls_cert = \"" + dir.file("server.crt") + "\"\ntls_key = \"" + dir.file("server.key") + "\"\n";
        const std::string extra = listener_toml("mqtts", port, "sas", {}, tls) + device_toml("twin-dev", kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra, {}, upstream_url), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    }
    std::vector<std::string> device(std::vector<std::string> args) const {
        std::vector<std::string> argv{"node", kNodeDir + "/twin_device.js",
                                      "HostName=127.0.0.1:" + std::to_string(port) +
                                          ";DeviceId=twin-dev;SharedAccessKey=" + kKey,
                                      dir.file("ca.crt")};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    json get_twin() {
        const auto r = run(device({"get"}), 30s);
        INFO(r.output);
        INFO(gw->process().output());
        const auto twins = events_named(r.output, "twin");
        REQUIRE(r.exit_code == 0);
        REQUIRE(twins.size() == 1);
        return twins[0];
    }

    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t port = free_tcp_port();
    std::unique_ptr<Gateway> gw;
};

// The cloud side of direct methods on the mqtt profile: invokes the gateway's `invoke` through the
// broker and reads the answers (mosquitto_sub -v on `devices/gw-test/$iothub/methods/res/#`).
struct HubMethods {
    explicit HubMethods(const Mosquitto& hub)
        : port(std::to_string(hub.port())),
          sub({"mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", port, "-q", "1", "-v", "-t",
               "devices/gw-test/$iothub/methods/res/#"}) {}
    void invoke(const std::string& rid, const json& body) {
        const auto r = run({"mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                            "devices/gw-test/$iothub/methods/POST/invoke/?$rid=" + rid, "-m", body.dump()});
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    }
    // The answer to `rid`: (topic status, body).
    std::optional<std::pair<int, json>> answer(const std::string& rid) {
        const std::string out = sub.output();
        const std::string key = "/?$rid=" + rid + " ";
        const auto at = out.find(key);
        if (at == std::string::npos) return std::nullopt;
        const auto line_start = out.rfind('\n', at);
        const std::size_t from = line_start == std::string::npos ? 0 : line_start + 1;
        const std::string topic = out.substr(from, at - from);
        const auto res = topic.find("/res/");
        const int status = std::stoi(topic.substr(res + 5));
        const auto body_end = out.find('\n', at);
        return std::pair{status, json::parse(out.substr(at + key.size(), body_end - at - key.size()), nullptr, false)};
    }
    std::string port;
    Process sub;
};

}  // namespace

TEST_SUITE("twins-node") {

TEST_CASE("the Node SDK's getTwin through the gateway returns both documents with their versions") {
    TwinRig rig;
    const auto t = rig.get_twin();
    CHECK(t["desired"]["$version"] == 1);
    CHECK(t["reported"]["$version"] == 1);
}

TEST_CASE("a reported update from the Node SDK is answered after the commit and survives a SIGKILL of the gateway") {
    TwinRig rig;
    auto r = run(rig.device({"report", R"({"fw":"1.2","temp":{"max":30,"min":5}})"}), 30s);
    INFO(r.output);
    REQUIRE(events_named(r.output, "reported").size() == 1);
    r = run(rig.device({"report", R"({"temp":{"min":null}})"}), 30s);
    INFO(r.output);
    REQUIRE(events_named(r.output, "reported").size() == 1);

    rig.gw->kill_and_restart();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    const auto t = rig.get_twin();
    CHECK(t["reported"]["fw"] == "1.2");
    CHECK(t["reported"]["temp"] == json::parse(R"({"max":30})"));
    CHECK(t["reported"]["$version"] == 3);

    const auto shown = run({HUBGATE_BINARY, "devices", "show", "twin-dev", "-c", rig.gw->config_path()});
    INFO(shown.output);
    CHECK(shown.exit_code == 0);
    CHECK(shown.output.find("\"fw\": \"1.2\"") != std::string::npos);
}

TEST_CASE("a reported patch the gateway refuses fails the SDK's update with an error, not a crash") {
    TwinRig rig;
    const auto r = run(rig.device({"report", R"({"$bad":1})"}), 30s);
    INFO(r.output);
    const auto errors = events_named(r.output, "error");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].value("what", "") == "reported");
    CHECK(r.exit_code == 2);
}

TEST_CASE("a desired change published for the gateway's own twin reaches the Node SDK's properties.desired handler") {
    TempDir hub_dir;
    Mosquitto hub(hub_dir);
    hub.start();
    TwinRig rig(hub.url());
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->metric("hubgate_upstream_connected") == 1; }, 15s),
                    rig.gw->process().output());
    Process dev(rig.device({"desired", "interval", "30", "40"}));
    REQUIRE_MESSAGE(eventually([&] { return !events_named(dev.output(), "listening").empty(); }, 30s), dev.output());
    // The SDK subscribes to desired patches after registering the handler, without telling: the
    // "hub" sends until the handler saw the value (each send is a new desired version).
    std::optional<int> code;
    for (int i = 0; i < 20 && !code; ++i) {
        const auto r = run({"mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(hub.port()),
                            "-q", "1", "-t", "devices/gw-test/$iothub/twin/PATCH/properties/desired/?$version=" +
                                                 std::to_string(i + 2),
                            "-m", R"({"devices":{"twin-dev":{"interval":30,"mode":"eco"}},"$version":)" +
                                      std::to_string(i + 2) + "}"});
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        code = dev.wait(1s);
    }
    INFO(dev.output());
    INFO(rig.gw->process().output());
    REQUIRE(code == 0);
    const auto deltas = events_named(dev.output(), "desired");
    REQUIRE(!deltas.empty());
    const auto& last = deltas.back()["delta"];
    CHECK(last["interval"] == 30);
    CHECK(last["$version"].is_number());
    // A later GET sees the same desired document.
    const auto t = rig.get_twin();
    CHECK(t["desired"]["interval"] == 30);
    CHECK(t["desired"]["mode"] == "eco");
}

TEST_CASE("a desired change made at the hub while the gateway was down reaches the Node SDK's next getTwin") {
    TempDir hub_dir;
    Mosquitto hub(hub_dir);
    hub.start();
    HubTwin cloud(hub.port());  // answers the gateway's twin GET, as a cloud service on the broker would
    cloud.answer_gets(R"({"devices":{"twin-dev":{"interval":30}},"$version":4})");
    TwinRig rig(hub.url());
    const auto got = [&] {
        return rig.gw->metric("hubgate_twin_requests_total{op=\"upstream_get\",result=\"ok\"}") == 1;
    };
    REQUIRE_MESSAGE(eventually(got, 30s), rig.gw->process().output());
    CHECK(rig.get_twin()["desired"]["interval"] == 30);
    rig.gw->kill();
    cloud.answer_gets(R"({"devices":{"twin-dev":{"interval":60,"led":"on"}},"$version":5})");
    rig.gw->start();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    REQUIRE_MESSAGE(eventually(got, 30s), rig.gw->process().output());
    const auto t = rig.get_twin();
    CHECK(t["desired"]["interval"] == 60);
    CHECK(t["desired"]["led"] == "on");
    CHECK(t["desired"]["$version"] == 3);
}

TEST_CASE("a direct method invoked through the gateway's invoke is answered by the Node SDK's onDeviceMethod handler") {
    TempDir hub_dir;
    Mosquitto hub(hub_dir);
    hub.start();
    TwinRig rig(hub.url());
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->metric("hubgate_upstream_connected") == 1; }, 15s),
                    rig.gw->process().output());
    HubMethods cloud(hub);
    Process dev(rig.device({"method", "setLed", "answer", "40"}));
    REQUIRE_MESSAGE(eventually([&] { return dev.output().find("listening") != std::string::npos; }, 30s), dev.output());
    // The SDK subscribes after registering the handler, without telling: invoke until it answers
    // (404 before that: no method handler yet).
    std::optional<std::pair<int, json>> a;
    for (int i = 0; i < 20 && !(a && a->first == 200); ++i) {
        const std::string rid = "m" + std::to_string(i);
        cloud.invoke(rid, {{"deviceId", "twin-dev"}, {"methodName", "setLed"}, {"payload", {{"on", true}}},
                           {"responseTimeoutInSeconds", 5}});
        eventually([&] { return (a = cloud.answer(rid)).has_value(); }, 6s);
    }
    INFO(dev.output());
    INFO(cloud.sub.output());
    REQUIRE(a);
    CHECK(a->first == 200);
    CHECK(a->second == json::parse(R"({"status":200,"payload":{"echo":{"on":true}}})"));
    CHECK(rig.gw->metric("hubgate_method_calls_total{result=\"answered\"}") == 1);
}

TEST_CASE("a method for a device that is not connected is answered 404, one whose handler never answers 504") {
    TempDir hub_dir;
    Mosquitto hub(hub_dir);
    hub.start();
    TwinRig rig(hub.url());
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->metric("hubgate_upstream_connected") == 1; }, 15s),
                    rig.gw->process().output());
    HubMethods cloud(hub);
    std::optional<std::pair<int, json>> a;
    for (int i = 0; i < 10 && !a; ++i) {  // until the subscriber is up
        const std::string rid = "absent" + std::to_string(i);
        cloud.invoke(rid, {{"deviceId", "nobody"}, {"methodName", "x"}});
        eventually([&] { return (a = cloud.answer(rid)).has_value(); }, 2s);
    }
    INFO(cloud.sub.output());
    REQUIRE(a);
    CHECK(a->first == 404);
    CHECK(a->second["status"] == 404);

    Process dev(rig.device({"method", "slow", "silent", "40"}));
    REQUIRE_MESSAGE(eventually([&] { return dev.output().find("listening") != std::string::npos; }, 30s), dev.output());
    a.reset();
    for (int i = 0; i < 20 && !(a && a->first == 504); ++i) {
        const std::string rid = "s" + std::to_string(i);
        cloud.invoke(rid, {{"deviceId", "twin-dev"}, {"methodName", "slow"}, {"responseTimeoutInSeconds", 1}});
        eventually([&] { return (a = cloud.answer(rid)).has_value(); }, 4s);
    }
    INFO(dev.output());
    REQUIRE(a);
    CHECK(a->first == 504);
    CHECK(a->second["status"] == 504);
    CHECK(rig.gw->metric("hubgate_method_calls_total{result=\"timeout\"}") >= 1);
    CHECK(rig.gw->metric("hubgate_method_calls_total{result=\"not_connected\"}") >= 1);
    CHECK(dev.output().find("\"event\":\"method\"") != std::string::npos);
}

}  // TEST_SUITE
