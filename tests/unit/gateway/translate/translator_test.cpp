// The translation stage as adapters hold it (gateway/translate/translator.hpp): counters per rule
// and outcome, the route each device's last accepted message took (told once per change, so the
// store writes it once, not per message), bridges' children, and routes as they are persisted.
#include "gateway/translate/translator.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/metrics/registry.hpp"

using namespace hubgate;
using namespace hubgate::translate;

namespace {

std::shared_ptr<const RuleSet> tasmota_rules() {
    RuleSpec power;
    power.name = "tasmota-power";
    power.topic = "stat/{device}/POWER";
    power.format = "text";
    power.field = "power";
    power.device = "{device}";
    power.c2d_topic = "cmnd/{device}/{prop:command}";
    RuleSpec z2m;
    z2m.name = "z2m";
    z2m.topic = "zigbee2mqtt/{device}";
    z2m.device = "{device}";
    z2m.c2d_topic = "zigbee2mqtt/{device}/set";
    std::vector<CompileError> errors;
    auto rules = RuleSet::compile({power, z2m}, {}, "gw-1", errors);
    REQUIRE(rules != nullptr);
    return rules;
}

Inbound inbound(std::string_view topic, std::string_view payload, std::string_view device) {
    Inbound in;
    in.topic = topic;
    in.payload = payload;
    in.auth_device = device;
    return in;
}

}  // namespace

TEST_CASE("a device's route is told to the listener when it first appears and when it changes, not per message") {
    metrics::Registry registry;
    Translator tr(registry);
    tr.set_rules(tasmota_rules());
    std::vector<std::string> told;
    tr.set_route_listener([&](const std::string& device, const DeviceRoute& r) { told.push_back(device + " " + r.route.rule); });

    for (int i = 0; i < 3; ++i) {
        const auto t = tr.translate(inbound("stat/plug-1/POWER", "ON", "plug-1"));
        REQUIRE(t.verdict == Verdict::accepted);
        CHECK(tr.accepted(t, {}) == (i == 0));
    }
    CHECK(told == std::vector<std::string>{"plug-1 tasmota-power"});
    CHECK(registry.counter("hubgate_translate_messages_total", "", {{"rule", "tasmota-power"}, {"outcome", "accepted"}})
              .value() == 3);
}

TEST_CASE("C2D for a translated device takes its rule's c2d_topic, rendered from its last captures") {
    metrics::Registry registry;
    Translator tr(registry);
    tr.set_rules(tasmota_rules());
    HubMessage cmd;
    cmd.properties.set("command", "Power");
    CHECK_FALSE(tr.c2d_topic("plug-1", cmd).has_value());  // no route yet: IoT Hub's devicebound topic
    tr.accepted(tr.translate(inbound("stat/plug-1/POWER", "OFF", "plug-1")), {});
    const auto topic = tr.c2d_topic("plug-1", cmd);
    REQUIRE(topic.has_value());
    REQUIRE(topic->ok());
    CHECK(topic->value() == "cmnd/plug-1/Power");
    HubMessage without;
    const auto missing = tr.c2d_topic("plug-1", without);
    REQUIRE(missing.has_value());
    CHECK_FALSE(missing->ok());
    CHECK(missing->error().find("command") != std::string::npos);
}

TEST_CASE("a bridge's children are routed through it, and a spoof is counted without a route") {
    metrics::Registry registry;
    Translator tr(registry);
    tr.set_rules(tasmota_rules());
    tr.set_child_policy([](std::string_view bridge, std::string_view device) {
        return bridge == "z2m-bridge" && device.substr(0, 3) == "zb-";
    });
    const auto child = tr.translate(inbound("zigbee2mqtt/zb-lamp", R"({"state":"ON"})", "z2m-bridge"));
    REQUIRE(child.verdict == Verdict::accepted);
    CHECK(tr.accepted(child, "z2m-bridge"));
    CHECK(tr.routed_via("z2m-bridge") == std::vector<std::string>{"zb-lamp"});
    REQUIRE(tr.route_of("zb-lamp") != nullptr);
    CHECK(tr.route_of("zb-lamp")->via == "z2m-bridge");

    const auto spoof = tr.translate(inbound("zigbee2mqtt/kitchen", R"({"state":"ON"})", "z2m-bridge"));
    CHECK(spoof.verdict == Verdict::spoof);
    CHECK(tr.route_of("kitchen") == nullptr);
    CHECK(registry.counter("hubgate_translate_messages_total", "", {{"rule", "z2m"}, {"outcome", "spoof"}}).value() == 1);
}

TEST_CASE("captures survive their persisted form, separators and escapes included") {
    const std::vector<std::pair<std::string, std::string>> captures{
        {"device", "plug 1&2=x%"}, {"rest", "a/b/c"}, {"empty", ""}};
    const std::string text = encode_captures(captures);
    CHECK(text.find('/') == std::string::npos);
    const auto back = decode_captures(text);
    REQUIRE(back.has_value());
    CHECK(*back == captures);
    CHECK(decode_captures("").value().empty());
    CHECK_FALSE(decode_captures("no-equals-sign").has_value());
    CHECK_FALSE(decode_captures("a=%zz").has_value());
}
