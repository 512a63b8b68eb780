// The gateway's own twin upstream with a real mosquitto as the hub (mqtt profile, docs/twins.md):
// reported changes of a local device reach the hub as patches of `reported.devices.<D>`, coalesced,
// kept through a hub outage and a SIGKILL of the gateway; on every connect the gateway GETs its twin
// (answered by the test's HubTwin, as a cloud service would on a plain broker) and local devices
// get the desired properties they missed; a broker that answers no GET changes nothing.
// The device is Paho speaking IoT Hub's twin topics to the gateway's MQTT listener.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_twin.hpp"
#include "tests/support/mosquitto.hpp"
#include "tests/support/paho_device.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kKey = "dHdpbi11cHN0cmVhbS10ZXN0LWtleS0wMTIzNDU2Nzg=";

// A hub (mosquitto, kept across its restarts), the hub's side of the gateway twin, and a gateway
// with one SAS listener and device dev-1.
struct Rig {
    Rig() {
        hub.start();
        twin = std::make_unique<HubTwin>(hub.port());
    }
    void start_gateway() {
        const std::string extra = listener_toml("mqtt", device_port, "sas") + device_toml("dev-1", kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra, {}, hub.url()), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    }
    bool hub_connected(bool up) {
        return eventually([&] { return gw->metric("hubgate_upstream_connected") == (up ? 1 : 0); }, 30s);
    }
    double requests(const std::string& op, const std::string& result) {
        return gw->metric("hubgate_twin_requests_total{op=\"" + op + "\",result=\"" + result + "\"}");
    }

    // dev-1 connected and holding the twin answer (and desired) topics.
    std::unique_ptr<PahoDevice> device() {
        auto d = std::make_unique<PahoDevice>("tcp://127.0.0.1:" + std::to_string(device_port), "dev-1",
                                              device_token("dev-1", kKey));
        REQUIRE(d->connect() == 0);
        REQUIRE(d->subscribe("$iothub/twin/res/#", 0) == 0);
        REQUIRE(d->subscribe("$iothub/twin/PATCH/properties/desired/#", 0) == 0);
        return d;
    }
    // A reported patch, answered 204 once committed.
    void report(PahoDevice& d, const std::string& patch) {
        const std::string rid = std::to_string(++rid_);
        REQUIRE(d.publish("$iothub/twin/PATCH/properties/reported/?$rid=" + rid, patch, 0));
        const auto answer = answer_to(d, rid);
        REQUIRE(answer);
        REQUIRE(answer->topic.rfind("$iothub/twin/res/204/", 0) == 0);
    }
    // The device's twin as a GET answers it.
    json get(PahoDevice& d) {
        const std::string rid = std::to_string(++rid_);
        REQUIRE(d.publish("$iothub/twin/GET/?$rid=" + rid, "", 0));
        const auto answer = answer_to(d, rid);
        REQUIRE(answer);
        REQUIRE(answer->topic.rfind("$iothub/twin/res/200/", 0) == 0);
        return json::parse(answer->payload);
    }
    // Patches that arrived after the first `before`, less redeliveries of those (QoS 1 is at least
    // once: a broker stopped right after delivering may deliver again after its restart).
    std::vector<json> new_patches(std::size_t before) {
        const auto all = twin->patches();
        std::vector<json> seen, out;
        for (std::size_t i = 0; i < all.size(); ++i) {
            auto j = json::parse(all[i]);
            if (i < before) seen.push_back(std::move(j));
            else if (std::find(seen.begin(), seen.end(), j) == seen.end()) out.push_back(std::move(j));
        }
        return out;
    }
    std::optional<json> first_new_patch(std::size_t before) {
        std::optional<json> p;
        eventually([&] {
            auto n = new_patches(before);
            if (!n.empty()) p = n.front();
            return p.has_value();
        }, 30s);
        return p;
    }
    std::optional<ReceivedMessage> answer_to(PahoDevice& d, const std::string& rid) {
        for (int i = 0; i < 50; ++i) {
            auto m = d.next_message(10s);
            if (!m) return std::nullopt;
            const auto at = m->topic.find("$rid=");
            if (at == std::string::npos) continue;
            const auto end = m->topic.find('&', at);
            if (m->topic.substr(at + 5, end == std::string::npos ? end : end - at - 5) == rid) return m;
        }
        return std::nullopt;
    }

    TempDir hub_dir;
    Mosquitto hub{hub_dir};
    std::unique_ptr<HubTwin> twin;
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t device_port = free_tcp_port();
    std::unique_ptr<Gateway> gw;
    int rid_ = 0;
};

}  // namespace

TEST_SUITE("twins-upstream") {

TEST_CASE("reported changes made while the hub is away reach it after it returns as one patch, null for removed properties") {
    Rig rig;
    rig.start_gateway();
    REQUIRE(rig.hub_connected(true));
    auto dev = rig.device();
    rig.report(*dev, R"({"a":1,"keep":true})");
    REQUIRE_MESSAGE(rig.twin->wait_for_patches(1, 30s), rig.gw->process().output());
    CHECK(json::parse(rig.twin->patches()[0]) == json::parse(R"({"devices":{"dev-1":{"a":1,"keep":true}}})"));

    rig.hub.stop();
    REQUIRE(rig.hub_connected(false));
    rig.report(*dev, R"({"a":null,"b":2})");
    rig.report(*dev, R"({"t":{"min":5,"max":30}})");
    rig.report(*dev, R"({"t":{"min":null}})");
    CHECK(eventually([&] { return rig.gw->metric("hubgate_twin_reported_pending") == 1; }, 30s));

    rig.hub.start();
    REQUIRE(rig.hub_connected(true));
    // The first patch after the outage holds every change made during it.
    const auto after = rig.first_new_patch(1);
    INFO(rig.gw->process().output());
    REQUIRE(after);
    CHECK(*after == json::parse(R"({"devices":{"dev-1":{"a":null,"b":2,"t":{"max":30}}}})"));
    CHECK(eventually([&] { return rig.gw->metric("hubgate_twin_reported_pending") == 0; }, 30s));
    CHECK(rig.requests("upstream_reported", "ok") >= 1);
    CHECK(rig.requests("reported", "ok") == 4);
}

TEST_CASE("reported changes made while the hub is away survive a SIGKILL of the gateway and reach the hub after it returns") {
    Rig rig;
    rig.start_gateway();
    REQUIRE(rig.hub_connected(true));
    {
        auto dev = rig.device();
        rig.report(*dev, R"({"old":1,"fw":"1.0"})");
        REQUIRE_MESSAGE(rig.twin->wait_for_patches(1, 30s), rig.gw->process().output());
        rig.hub.stop();
        REQUIRE(rig.hub_connected(false));
        rig.report(*dev, R"({"old":null,"fw":"1.1"})");
    }
    rig.gw->kill_and_restart();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    CHECK(rig.twin->patches().size() == 1);
    rig.hub.start();
    const auto after = rig.first_new_patch(1);
    INFO(rig.gw->process().output());
    REQUIRE(after);
    CHECK(*after == json::parse(R"({"devices":{"dev-1":{"old":null,"fw":"1.1"}}})"));
}

TEST_CASE("a desired change made while the gateway was down, kept by no broker, is seen by the device's next GET") {
    Rig rig;
    rig.twin->answer_gets(R"({"devices":{"dev-1":{"interval":30,"mode":"eco"}},"$version":5})");
    rig.start_gateway();
    REQUIRE(eventually([&] { return rig.requests("upstream_get", "ok") == 1; }, 30s));
    {
        auto dev = rig.device();
        const auto t = rig.get(*dev);
        CHECK(t["desired"]["interval"] == 30);
        CHECK(t["desired"]["mode"] == "eco");
    }
    rig.gw->kill();
    // Changed at the hub while the gateway is away: only its twin document says so.
    rig.twin->answer_gets(R"({"devices":{"dev-1":{"interval":45}},"$version":6})");
    rig.gw->start();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    REQUIRE_MESSAGE(eventually([&] { return rig.requests("upstream_get", "ok") == 1; }, 30s), rig.gw->process().output());
    auto dev = rig.device();
    const auto t = rig.get(*dev);
    CHECK(t["desired"]["interval"] == 45);
    CHECK_FALSE(t["desired"].contains("mode"));
    CHECK(t["desired"]["$version"] == 3);
}

TEST_CASE("a connected device is sent what the hub's twin says once the gateway is back with the hub") {
    Rig rig;
    rig.twin->answer_gets(R"({"devices":{"dev-1":{"interval":10}},"$version":1})");
    rig.start_gateway();
    REQUIRE(eventually([&] { return rig.requests("upstream_get", "ok") == 1; }, 30s));
    auto dev = rig.device();
    rig.hub.stop();
    REQUIRE(rig.hub_connected(false));
    rig.twin->answer_gets(R"({"devices":{"dev-1":{"interval":20}},"$version":2})");
    rig.hub.start();
    std::optional<ReceivedMessage> patch;
    for (int i = 0; i < 20 && !patch; ++i) {
        auto m = dev->next_message(5s);
        if (m && m->topic.rfind("$iothub/twin/PATCH/properties/desired/", 0) == 0) patch = m;
    }
    INFO(rig.gw->process().output());
    REQUIRE(patch);
    const auto body = json::parse(patch->payload);
    CHECK(body["interval"] == 20);
    CHECK(body["$version"] == 3);
    CHECK(eventually([&] { return rig.gw->metric("hubgate_twin_desired_changes_total{source=\"get\"}") == 2; }, 10s));
}

TEST_CASE("a twin reset at the hub while the gateway was away gets the devices' reported properties again on the next connect") {
    Rig rig;
    rig.twin->answer_gets(R"({"$version":1})");
    rig.start_gateway();
    REQUIRE(eventually([&] { return rig.requests("upstream_get", "ok") == 1; }, 30s));
    {
        auto dev = rig.device();
        rig.report(*dev, R"({"fw":"1.0","x":{"y":1}})");
    }
    REQUIRE_MESSAGE(rig.twin->wait_for_patches(1, 30s), rig.gw->process().output());
    rig.gw->kill();
    rig.twin->reset_reported();  // the hub's copy is gone; the gateway's store still says it was sent
    rig.gw->start();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    INFO(rig.gw->process().output());
    REQUIRE(eventually([&] { return rig.twin->patches().size() >= 2; }, 30s));
    CHECK(json::parse(rig.twin->patches().back()) == json::parse(R"({"devices":{"dev-1":{"fw":"1.0","x":{"y":1}}}})"));
    CHECK(json::parse(rig.twin->reported())["devices"]["dev-1"] == json::parse(R"({"fw":"1.0","x":{"y":1}})"));
}

TEST_CASE("a broker that answers no GET is waited for, counted once it timed out, and reported patches go on") {
    Rig rig;  // the HubTwin answers no GET
    rig.start_gateway();
    REQUIRE(rig.hub_connected(true));
    auto dev = rig.device();
    rig.report(*dev, R"({"ok":true})");
    REQUIRE_MESSAGE(rig.twin->wait_for_patches(1, 30s), rig.gw->process().output());
    CHECK(rig.twin->gets() >= 1);
    REQUIRE(eventually([&] { return rig.requests("upstream_get", "timeout") == 1; }, 30s));
    const std::string log = rig.gw->process().output();
    CHECK(log.find("no answer to the GET") != std::string::npos);
    CHECK(rig.get(*dev)["reported"]["ok"] == true);
}

}  // TEST_SUITE
