// The rule engine (gateway/translate/rule_set.hpp, DESIGN.md "Translation rules"): which rule a
// message meets, what hub message it makes, whose it may be, where C2D goes back, and what
// check-config says about a bad rule. Device payloads are the families' documented ones
// (tests/data/README.md); small inline JSON only where a test is about one value's form.
#include "gateway/translate/rule_set.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "gateway/translate/decoder.hpp"
#include "tests/unit/gateway/translate/payloads.hpp"

using namespace hubgate;
using namespace hubgate::translate;
using hubgate::test::payload;

namespace {

const std::vector<std::string> kListeners{"lan", "wan", "coap"};

RuleSpec topic_rule(std::string name, std::string topic) {
    RuleSpec s;
    s.name = std::move(name);
    s.topic = std::move(topic);
    return s;
}

RuleSpec path_rule(std::string name, std::string path) {
    RuleSpec s;
    s.name = std::move(name);
    s.path = std::move(path);
    return s;
}

std::shared_ptr<const RuleSet> compiled(const std::vector<RuleSpec>& specs) {
    std::vector<CompileError> errors;
    auto set = RuleSet::compile(specs, kListeners, "pi-gw", errors);
    for (const auto& e : errors) INFO(e.line, ": ", e.what);
    REQUIRE(errors.empty());
    REQUIRE(set != nullptr);
    return set;
}

std::vector<CompileError> errors_of(const std::vector<RuleSpec>& specs) {
    std::vector<CompileError> errors;
    auto set = RuleSet::compile(specs, kListeners, "pi-gw", errors);
    CHECK(set == nullptr);
    CHECK_FALSE(errors.empty());
    return errors;
}

// The one error a bad rule gives.
CompileError error_of(const RuleSpec& spec) {
    const auto errors = errors_of({spec});
    REQUIRE(errors.size() == 1);
    return errors[0];
}

// An MQTT message on the open (auth = none) listener "lan", from Tasmota's default client id.
Inbound mqtt(std::string_view topic, std::string_view body) {
    Inbound in;
    in.transport = Transport::mqtt;
    in.listener = "lan";
    in.topic = topic;
    in.payload = body;
    in.client_id = "DVES_5A1B2C";
    in.receive_ms = 1700000000000;
    return in;
}

Inbound coap(std::string_view path, std::string_view body) {
    Inbound in = mqtt(path, body);
    in.transport = Transport::coap;
    in.listener = "coap";
    in.client_id = "";
    return in;
}

// A payload that outlives the Inbound viewing it (tests keep an Inbound across several calls).
std::string_view stored(const std::string& relative) {
    static std::deque<std::string> kept;
    return kept.emplace_back(payload(relative));
}

const ChildPolicy kNoChildren;

Translation translated(const RuleSet& set, const Inbound& in, const ChildPolicy& children = kNoChildren) {
    return set.translate(in, children);
}

std::optional<std::string> property(const HubMessage& m, std::string_view name) {
    const AppProperty* p = m.properties.find(name);
    if (!p) return std::nullopt;
    return p->value.value_or("<no value>");
}

std::vector<std::string> property_names(const HubMessage& m) {
    std::vector<std::string> names;
    for (const auto& p : m.properties) names.push_back(p.name);
    return names;
}

using Captures = std::vector<std::pair<std::string, std::string>>;

}  // namespace

// --- which rule -------------------------------------------------------------------------------------

TEST_CASE("a literal topic rule accepts that topic and no other") {
    auto spec = topic_rule("switch", "stat/tasmota_switch/POWER");
    spec.format = "text";
    spec.device = "tasmota_switch";
    const auto set = compiled({spec});
    const auto on = payload("tasmota/stat_POWER_on.txt");
    CHECK(translated(*set, mqtt("stat/tasmota_switch/POWER", on)).verdict == Verdict::accepted);
    CHECK(translated(*set, mqtt("stat/tasmota_other/POWER", on)).verdict == Verdict::unmatched);
    CHECK(translated(*set, mqtt("stat/tasmota_switch/POWER/x", on)).verdict == Verdict::unmatched);
}

TEST_CASE("a {device} capture of tele/{device}/SENSOR becomes the device id and the route") {
    auto spec = topic_rule("tasmota-sensor", "tele/{device}/SENSOR");
    spec.device = "{device}";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.rule == "tasmota-sensor");
    CHECK(t.message.device_id == "pow1");
    CHECK(t.route.rule == "tasmota-sensor");
    CHECK(t.route.captures == Captures{{"device", "pow1"}});
}

TEST_CASE("the route lists every capture in pattern order") {
    auto spec = topic_rule("shelly-relay", "shellies/{device}/relay/{n}");
    spec.format = "text";
    spec.device = "{device}";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("shellies/shelly1-ABC123/relay/0", payload("shelly/relay_0_on.txt")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.route.captures == Captures{{"device", "shelly1-ABC123"}, {"n", "0"}});
}

TEST_CASE("a final {name*} capture takes the rest of the topic, or nothing") {
    auto spec = topic_rule("z2m", "zigbee2mqtt/{rest*}");
    spec.format = "auto";
    spec.properties = {{"z2m-topic", "{rest}"}};
    const auto set = compiled({spec});
    const auto nested = translated(*set, mqtt("zigbee2mqtt/bridge/state", payload("zigbee2mqtt/bridge_state_online.txt")));
    REQUIRE(nested.verdict == Verdict::accepted);
    CHECK(property(nested.message, "z2m-topic") == "bridge/state");
    const auto bare = translated(*set, mqtt("zigbee2mqtt", "{}"));
    REQUIRE(bare.verdict == Verdict::accepted);
    CHECK(property(bare.message, "z2m-topic") == "");
}

TEST_CASE("a rule whose pattern starts with a capture matches ESPHome's {prefix}/sensor/{name}/state") {
    auto spec = topic_rule("esphome", "{prefix}/sensor/{name}/state");
    spec.format = "text";
    spec.device = "{prefix}";
    spec.field = "{name}";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("livingroom/sensor/temperature/state",
                                         payload("esphome/sensor_state_nan_as_none.txt")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.message.device_id == "livingroom");
    CHECK(t.message.body == R"({"temperature":"None"})");
}

TEST_CASE("a '$' segment of a Homie pattern is matched literally") {
    auto state = topic_rule("homie-state", "homie/5/{device}/$state");
    state.format = "text";
    state.device = "{device}";
    state.field = "state";
    auto property_rule = topic_rule("homie-property", "homie/5/{device}/{node}/{prop_name}");
    property_rule.format = "text";
    property_rule.device = "{device}";
    property_rule.field = "{prop_name}";
    const auto set = compiled({state, property_rule});
    const auto init = translated(*set, mqtt("homie/5/super-car/$state", payload("homie/state_init.txt")));
    CHECK(init.rule == "homie-state");
    CHECK(init.message.body == R"({"state":"init"})");
    const auto temperature =
        translated(*set, mqtt("homie/5/super-car/engine/temperature", payload("homie/engine_temperature.txt")));
    CHECK(temperature.rule == "homie-property");
    CHECK(temperature.message.body == R"({"temperature":21.5})");
    CHECK(translated(*set, mqtt("homie/5/super-car/$stats", "x")).verdict == Verdict::unmatched);
}

TEST_CASE("the first rule in file order wins when patterns overlap") {
    auto any = topic_rule("any-sensor", "tele/{device}/SENSOR");
    any.module = "generic";
    auto kitchen = topic_rule("kitchen", "tele/kitchen/SENSOR");
    kitchen.module = "kitchen";
    const auto body = payload("tasmota/tele_SENSOR_ds18b20.json");

    const auto general_first = compiled({any, kitchen});
    CHECK(translated(*general_first, mqtt("tele/kitchen/SENSOR", body)).rule == "any-sensor");

    const auto literal_first = compiled({kitchen, any});
    const auto t = translated(*literal_first, mqtt("tele/kitchen/SENSOR", body));
    CHECK(t.rule == "kitchen");
    CHECK(t.message.module_id == "kitchen");
    CHECK(translated(*literal_first, mqtt("tele/hall/SENSOR", body)).rule == "any-sensor");
}

TEST_CASE("a topic no rule matches is unmatched, with no rule named") {
    const auto set = compiled({topic_rule("tasmota", "tele/{device}/SENSOR")});
    const auto t = translated(*set, mqtt("tele/pow1/INFO1", R"({"Module":"Sonoff Pow R2"})"));
    CHECK(t.verdict == Verdict::unmatched);
    CHECK(t.rule.empty());
    CHECK(t.reason == "no rule for topic 'tele/pow1/INFO1' on listener 'lan'");
}

TEST_CASE("MQTT rules do not match CoAP paths, nor CoAP rules MQTT topics") {
    auto m = topic_rule("mqtt", "sensors/{device}");
    m.device = "{device}";
    auto c = path_rule("coap", "/sensors/{device}");
    c.device = "{device}";
    const auto set = compiled({m, c});
    CHECK(translated(*set, mqtt("sensors/t1", "{}")).rule == "mqtt");
    CHECK(translated(*set, coap("/sensors/t1", "{}")).rule == "coap");
    CHECK(translated(*set, mqtt("/sensors/t1", "{}")).verdict == Verdict::unmatched);
}

// --- listeners --------------------------------------------------------------------------------------

TEST_CASE("a rule with listeners applies only on those listeners") {
    auto spec = topic_rule("lan-only", "tele/{device}/SENSOR");
    spec.listeners = {"lan"};
    const auto set = compiled({spec});
    const auto body = payload("tasmota/tele_SENSOR_ds18b20.json");
    auto in = mqtt("tele/ds1820/SENSOR", body);
    CHECK(translated(*set, in).verdict == Verdict::accepted);
    in.listener = "wan";
    CHECK(translated(*set, in).verdict == Verdict::unmatched);
}

TEST_CASE("a rule the listener filter skips lets the next matching rule apply") {
    auto lan = topic_rule("lan", "tele/{device}/SENSOR");
    lan.listeners = {"lan"};
    auto wan = topic_rule("wan", "tele/{device}/SENSOR");
    wan.listeners = {"wan"};
    const auto set = compiled({lan, wan});
    auto in = mqtt("tele/ds1820/SENSOR", stored("tasmota/tele_SENSOR_ds18b20.json"));
    in.listener = "wan";
    CHECK(translated(*set, in).rule == "wan");
}

TEST_CASE("an unnamed listener gets only the rules without a listeners list") {
    auto named = topic_rule("named", "tele/{device}/SENSOR");
    named.listeners = {"lan"};
    auto everywhere = topic_rule("everywhere", "tele/{device}/STATE");
    const auto set = compiled({named, everywhere});
    auto sensor = mqtt("tele/ds1820/SENSOR", stored("tasmota/tele_SENSOR_ds18b20.json"));
    sensor.listener = "";
    CHECK(translated(*set, sensor).verdict == Verdict::unmatched);
    auto state = mqtt("tele/tasmota/STATE", stored("tasmota/tele_STATE.json"));
    state.listener = "";
    CHECK(translated(*set, state).rule == "everywhere");
}

TEST_CASE("names_listener says whether some rule of the transport applies on a listener") {
    auto lan = topic_rule("lan", "tele/{device}/SENSOR");
    lan.listeners = {"lan"};
    auto c = path_rule("coap", "/sensors/{device}");
    c.listeners = {"coap"};
    const auto set = compiled({lan, c});
    CHECK(set->names_listener("lan", Transport::mqtt));
    CHECK_FALSE(set->names_listener("wan", Transport::mqtt));
    CHECK_FALSE(set->names_listener("", Transport::mqtt));
    CHECK(set->names_listener("coap", Transport::coap));
    CHECK_FALSE(set->names_listener("lan", Transport::coap));

    const auto everywhere = compiled({topic_rule("all", "tele/{device}/SENSOR")});
    CHECK(everywhere->names_listener("wan", Transport::mqtt));
    CHECK(everywhere->names_listener("", Transport::mqtt));
    CHECK_FALSE(everywhere->names_listener("wan", Transport::coap));
}

TEST_CASE("an empty rule set is empty and names no listener") {
    const auto set = compiled({});
    CHECK(set->empty());
    CHECK_FALSE(set->names_listener("lan", Transport::mqtt));
    CHECK(translated(*set, mqtt("tele/pow1/SENSOR", "{}")).verdict == Verdict::unmatched);
}

// --- templates --------------------------------------------------------------------------------------

TEST_CASE("a {json:} pointer that names nothing makes the next matching rule be tried") {
    auto by_probe = topic_rule("ds18b20", "tele/{device}/SENSOR");
    by_probe.device = "{json:/DS18B20/Id}";
    auto by_topic = topic_rule("by-topic", "tele/{device}/SENSOR");
    by_topic.device = "{device}";
    const auto set = compiled({by_probe, by_topic});

    const auto probe = translated(*set, mqtt("tele/ds1820/SENSOR", payload("tasmota/tele_SENSOR_ds18b20.json")));
    CHECK(probe.rule == "ds18b20");
    CHECK(probe.message.device_id == "030597946B04");

    const auto pow = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    CHECK(pow.rule == "by-topic");
    CHECK(pow.message.device_id == "pow1");
}

TEST_CASE("a {json:} pointer to an object does not match, and the unmatched reason names it") {
    auto object = topic_rule("object", "tele/{device}/SENSOR");
    object.properties = {{"energy", "{json:/ENERGY}"}};
    const auto set = compiled({object});
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    CHECK(t.verdict == Verdict::unmatched);
    CHECK(t.reason ==
          "rule 'object' matched but {json:/ENERGY} in properties.energy names no string or number in the body");
}

TEST_CASE("{json:} numbers render as written in the JSON") {
    auto spec = topic_rule("pow", "tele/{device}/SENSOR");
    spec.properties = {{"power", "{json:/ENERGY/Power}"}, {"period", "{json:/ENERGY/Period}"},
                       {"total", "{json:/ENERGY/Total}"}};
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/teleinfo/SENSOR", payload("tasmota/tele_SENSOR_teleinfo.json")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(property(t.message, "power") == "170");
    CHECK(property(t.message, "period") == "9");  // written "Period": 9
    CHECK(property(t.message, "total") == "9098.245");
}

TEST_CASE("floats render as their shortest text, not their original spelling (the documented limit)") {
    auto spec = topic_rule("pow", "tele/{device}/SENSOR");
    spec.properties = {{"yesterday", "{json:/ENERGY/Yesterday}"}};
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    CHECK(property(t.message, "yesterday") == "5.34");  // written 5.340
}

TEST_CASE("{client} is the authenticated id, else the client id, {gateway} is the gateway's id") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.properties = {{"sender", "{client}"}, {"site", "{gateway}"}};
    const auto set = compiled({spec});
    auto in = mqtt("tele/pow1/SENSOR", stored("tasmota/tele_SENSOR_pow.json"));
    const auto open = translated(*set, in);
    CHECK(property(open.message, "sender") == "DVES_5A1B2C");
    CHECK(property(open.message, "site") == "pi-gw");
    in.auth_device = "pow1";
    CHECK(property(translated(*set, in).message, "sender") == "pow1");
}

TEST_CASE("properties keep the rule's order, then the CoAP query's, which cannot override them") {
    auto spec = path_rule("coap-sensor", "/sensors/{device}");
    spec.device = "{device}";
    spec.properties = {{"source", "coap"}, {"site", "{gateway}"}};
    const auto set = compiled({spec});
    AppProperties query;
    query.set("batch", std::string("7"));
    query.set("source", std::string("device-says"));
    auto in = coap("/sensors/t1", R"({"t":21.5})");
    in.query = &query;
    const auto t = translated(*set, in);
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(property_names(t.message) == std::vector<std::string>{"source", "site", "batch"});
    CHECK(property(t.message, "source") == "coap");
}

TEST_CASE("module is the rule's template, else the device's or listener's default") {
    auto with_module = topic_rule("with", "tele/{device}/SENSOR");
    with_module.module = "tasmota-{device}";
    auto without = topic_rule("without", "tele/{device}/STATE");
    const auto set = compiled({with_module, without});
    auto sensor = mqtt("tele/pow1/SENSOR", stored("tasmota/tele_SENSOR_pow.json"));
    sensor.default_module = "edge";
    CHECK(translated(*set, sensor).message.module_id == "tasmota-pow1");
    auto state = mqtt("tele/tasmota/STATE", stored("tasmota/tele_STATE.json"));
    state.default_module = "edge";
    CHECK(translated(*set, state).message.module_id == "edge");
}

TEST_CASE("SenML: {json:} and time point into the resolved records") {
    auto spec = path_rule("senml", "/sensors/{device}");
    spec.format = "senml";
    spec.device = "{device}";
    spec.properties = {{"sensor", "{json:/0/n}"}, {"unit", "{json:/0/u}"}};
    spec.time = "/0/t";
    const auto set = compiled({spec});
    // RFC 8428 §5.1.1: one record without a time, taken as the gateway's receive time.
    const auto t = translated(*set, coap("/sensors/t1", payload("senml/rfc8428-5.1.1-single-data-point.json")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(property(t.message, "sensor") == "urn:dev:ow:10e2073a01080063");
    CHECK(property(t.message, "unit") == "Cel");
    CHECK(t.message.system.creation_time == "2023-11-14T22:13:20Z");
}

// --- output -----------------------------------------------------------------------------------------

TEST_CASE("a JSON body is kept byte for byte as UTF-8 JSON, without source-content-type") {
    const auto set = compiled({topic_rule("tasmota", "tele/{device}/SENSOR")});
    const auto body = payload("tasmota/tele_SENSOR_teleinfo.json");
    const auto t = translated(*set, mqtt("tele/teleinfo/SENSOR", body));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.message.body == body);
    CHECK(t.message.system.content_type == "application/json");
    CHECK(t.message.system.content_encoding == "utf-8");
    CHECK_FALSE(property(t.message, "source-content-type"));
    CHECK_FALSE(t.decode_error);
}

TEST_CASE("a converted body carries source-content-type with the media type that arrived") {
    auto spec = topic_rule("lwt", "tele/{device}/LWT");
    spec.format = "text";
    spec.field = "lwt";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/tasmota_5A1B2C/LWT", payload("tasmota/tele_LWT_online.txt")));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.message.body == R"({"lwt":"Online"})");
    CHECK(t.message.system.content_type == "application/json");
    CHECK(property(t.message, "source-content-type") == "text/plain");
}

TEST_CASE("a binary body stays bytes with content type application/octet-stream") {
    auto spec = topic_rule("raw", "meters/{device}/frame");
    spec.format = "binary";
    const auto set = compiled({spec});
    const std::string frame("\x68\x31\x00\x31\x68\x08", 6);
    const auto t = translated(*set, mqtt("meters/m1/frame", frame));
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.message.body == frame);
    CHECK(t.message.system.content_type == "application/octet-stream");
    CHECK(t.message.system.content_encoding.empty());
}

TEST_CASE("translate leaves the message id and enqueue time to normalize_message") {
    const auto set = compiled({topic_rule("tasmota", "tele/{device}/SENSOR")});
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    CHECK(t.message.system.message_id.empty());
    CHECK(t.message.enqueued_ms == 0);
}

// --- identity ---------------------------------------------------------------------------------------

TEST_CASE("without a device template the device is the authenticated id, else the client id") {
    const auto set = compiled({topic_rule("tasmota", "tele/{device}/SENSOR")});
    auto in = mqtt("tele/pow1/SENSOR", stored("tasmota/tele_SENSOR_pow.json"));
    CHECK(translated(*set, in).message.device_id == "DVES_5A1B2C");
    in.auth_device = "pow1";
    CHECK(translated(*set, in).message.device_id == "pow1");
}

TEST_CASE("a device id other than the authenticated one is a spoof unless it is a child") {
    auto spec = topic_rule("z2m", "zigbee2mqtt/{device}");
    spec.device = "{device}";
    const auto set = compiled({spec});
    auto in = mqtt("zigbee2mqtt/kitchen_sensor", stored("zigbee2mqtt/device_WSDCGQ01LM.json"));
    in.auth_device = "z2m-bridge";
    const auto t = translated(*set, in);
    CHECK(t.verdict == Verdict::spoof);
    CHECK(t.rule == "z2m");
    CHECK(t.reason == "rule 'z2m' gives device 'kitchen_sensor' but the connection is device 'z2m-bridge', which "
                      "may not speak for it (no children glob of its own matches)");
    CHECK(t.message.device_id.empty());
    CHECK(t.route.rule.empty());
}

TEST_CASE("a bridge's children policy lets it speak for the devices it allows") {
    auto spec = topic_rule("z2m", "zigbee2mqtt/{device}");
    spec.device = "{device}";
    const auto set = compiled({spec});
    std::vector<std::pair<std::string, std::string>> asked;
    const ChildPolicy kitchen_only = [&](std::string_view authenticated, std::string_view device) {
        asked.emplace_back(authenticated, device);
        return device.substr(0, 8) == "kitchen_";
    };
    auto in = mqtt("zigbee2mqtt/kitchen_sensor", stored("zigbee2mqtt/device_WSDCGQ01LM.json"));
    in.auth_device = "z2m-bridge";
    const auto child = translated(*set, in, kitchen_only);
    CHECK(child.verdict == Verdict::accepted);
    CHECK(child.message.device_id == "kitchen_sensor");
    CHECK(asked == std::vector<std::pair<std::string, std::string>>{{"z2m-bridge", "kitchen_sensor"}});

    auto other = mqtt("zigbee2mqtt/garage_door", stored("zigbee2mqtt/device_WXKG01LM.json"));
    other.auth_device = "z2m-bridge";
    CHECK(translated(*set, other, kitchen_only).verdict == Verdict::spoof);
}

TEST_CASE("a device speaking for itself is accepted without asking the children policy") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.device = "{device}";
    const auto set = compiled({spec});
    bool asked = false;
    const ChildPolicy policy = [&](std::string_view, std::string_view) { return asked = true, false; };
    auto in = mqtt("tele/pow1/SENSOR", stored("tasmota/tele_SENSOR_pow.json"));
    in.auth_device = "pow1";
    CHECK(translated(*set, in, policy).verdict == Verdict::accepted);
    CHECK_FALSE(asked);
}

TEST_CASE("on an open listener the rule's device id is taken as given") {
    auto spec = topic_rule("z2m", "zigbee2mqtt/{device}");
    spec.device = "{device}";
    const auto set = compiled({spec});
    bool asked = false;
    const ChildPolicy policy = [&](std::string_view, std::string_view) { return asked = true, false; };
    const auto t = translated(*set, mqtt("zigbee2mqtt/kitchen_sensor", payload("zigbee2mqtt/device_WSDCGQ01LM.json")), policy);
    CHECK(t.verdict == Verdict::accepted);
    CHECK(t.message.device_id == "kitchen_sensor");
    CHECK_FALSE(asked);
}

TEST_CASE("a rendered device id that breaks IoT Hub's id rule is bad_device_id") {
    auto spec = topic_rule("z2m", "zigbee2mqtt/{device}");
    spec.device = "{device}";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("zigbee2mqtt/Kitchen Sensor", payload("zigbee2mqtt/device_WSDCGQ01LM.json")));
    CHECK(t.verdict == Verdict::bad_device_id);
    CHECK(t.reason.find("device id 'Kitchen Sensor', which is not an IoT Hub id") != std::string::npos);
    CHECK(t.message.device_id.empty());
}

TEST_CASE("a rendered module id that breaks IoT Hub's id rule is bad_device_id") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.module = "{json:/TIC/OPTARIF}";  // "HC.." is fine; a space is not
    const auto set = compiled({spec});
    CHECK(translated(*set, mqtt("tele/t/SENSOR", payload("tasmota/tele_SENSOR_teleinfo.json"))).verdict ==
          Verdict::accepted);
    const auto t = translated(*set, mqtt("tele/t/SENSOR", R"({"TIC":{"OPTARIF":"HP HC"}})"));
    CHECK(t.verdict == Verdict::bad_device_id);
    CHECK(t.reason.find("module id 'HP HC'") != std::string::npos);
}

TEST_CASE("a connection without identity and a rule without a device template is bad_device_id") {
    const auto set = compiled({path_rule("coap", "/sensors/{device}")});
    CHECK(translated(*set, coap("/sensors/t1", "{}")).verdict == Verdict::bad_device_id);
}

// --- decode errors ----------------------------------------------------------------------------------

TEST_CASE("on_decode_error raw keeps the bytes, says why, and applies what needs no body") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.device = "{json:/DS18B20/Id}";
    spec.module = "{json:/TempUnit}";
    spec.properties = {{"topic-device", "{device}"}, {"unit", "{json:/TempUnit}"}, {"site", "{gateway}"}};
    const auto set = compiled({spec});
    auto in = mqtt("tele/ds1820/SENSOR", R"({"Time":"2021-01-13T23:58:41","DS18B20":{"Id":)");
    in.auth_device = "ds1820";
    in.default_module = "edge";
    const auto t = translated(*set, in);
    REQUIRE(t.verdict == Verdict::accepted);
    CHECK(t.decode_error);
    CHECK(t.message.body == in.payload);
    CHECK(t.message.system.content_type == "application/octet-stream");
    CHECK(t.message.system.content_encoding.empty());
    CHECK(t.message.device_id == "ds1820");  // the connection's identity, not {json:}
    CHECK(t.message.module_id == "edge");
    CHECK(property_names(t.message) == std::vector<std::string>{"topic-device", "site", "decode-error"});
    CHECK_FALSE(property(t.message, "decode-error")->empty());
    CHECK(t.route.rule == "tasmota");
}

TEST_CASE("a payload the matching rule cannot decode stays with that rule, the next rule is not tried") {
    auto json = topic_rule("json", "tele/{device}/SENSOR");
    json.time = "/Time";
    auto text = topic_rule("text", "tele/{device}/SENSOR");
    text.format = "text";
    const auto set = compiled({json, text});
    const auto t = translated(*set, mqtt("tele/ds1820/SENSOR", "Temperature 20.9"));
    CHECK(t.rule == "json");
    CHECK(t.decode_error);
    CHECK_FALSE(t.time_ignored);  // a raw body has no time to ignore; the decode error is what counts
    CHECK(t.message.system.creation_time.empty());
}

TEST_CASE("on_decode_error refuse refuses a bad payload as refused_decode and builds nothing") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.on_decode_error = "refuse";
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/ds1820/SENSOR", R"({"Time":"2021-01-13T23:58:41",)"));
    CHECK(t.verdict == Verdict::refused_decode);
    CHECK(t.rule == "tasmota");
    CHECK(t.message.body.empty());
    CHECK(t.message.device_id.empty());
    CHECK(t.route.rule.empty());
    CHECK(t.reason.rfind("format json: ", 0) == 0);
}

constexpr std::string_view kCborT("\xa1\x61\x74\xf9\x4d\x60", 6);  // CBOR {"t": 21.5}

TEST_CASE("on_decode_error refuse refuses a Content-Format the rule cannot decode as refused_format") {
    auto spec = path_rule("coap-json", "/sensors/{device}");
    spec.device = "{device}";
    spec.on_decode_error = "refuse";
    const auto set = compiled({spec});
    auto in = coap("/sensors/t1", kCborT);
    in.content_format = content_format::cbor;
    CHECK(translated(*set, in).verdict == Verdict::refused_format);
}

TEST_CASE("on_decode_error raw keeps a payload of an unsupported Content-Format as bytes") {
    auto spec = path_rule("coap-json", "/sensors/{device}");
    spec.device = "{device}";
    const auto set = compiled({spec});
    auto in = coap("/sensors/t1", kCborT);
    in.content_format = content_format::cbor;
    const auto t = translated(*set, in);
    CHECK(t.verdict == Verdict::accepted);
    CHECK(t.decode_error);
    CHECK(property(t.message, "decode-error").has_value());
}

// --- reading time -----------------------------------------------------------------------------------

namespace {

Translation with_time(std::string_view body, std::string pointer = "/Time") {
    auto spec = topic_rule("timed", "tele/{device}/SENSOR");
    spec.time = std::move(pointer);
    const auto set = compiled({spec});
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", body));
    REQUIRE(t.verdict == Verdict::accepted);
    return t;
}

}  // namespace

TEST_CASE("time: an ISO-8601 string without a zone is taken as UTC (Tasmota's Time)") {
    const auto t = with_time(payload("tasmota/tele_SENSOR_pow.json"));
    CHECK(t.message.system.creation_time == "2018-02-15T17:37:10Z");
    CHECK_FALSE(t.time_ignored);
}

TEST_CASE("time: an ISO-8601 string in UTC is kept, its fraction as milliseconds") {
    CHECK(with_time(R"({"Time":"2024-01-15T12:34:56Z"})").message.system.creation_time == "2024-01-15T12:34:56Z");
    CHECK(with_time(R"({"Time":"2024-01-15T12:34:56.5Z"})").message.system.creation_time ==
          "2024-01-15T12:34:56.500Z");
    CHECK(with_time(R"({"Time":"2024-01-15T12:34:56.123456+00:00"})").message.system.creation_time ==
          "2024-01-15T12:34:56.123Z");
}

TEST_CASE("time: an ISO-8601 string with an offset is converted to UTC") {
    CHECK(with_time(R"({"last_seen":"2024-01-15T00:30:00+01:00"})", "/last_seen").message.system.creation_time ==
          "2024-01-14T23:30:00Z");
    CHECK(with_time(R"({"Time":"2024-02-28T22:00:00-05:30"})").message.system.creation_time ==
          "2024-02-29T03:30:00Z");
}

TEST_CASE("time: RFC 3339's space separator and the ±HHMM and ±HH offset forms are read too") {
    CHECK(with_time(R"({"Time":"2024-01-15 12:34:56+0100"})").message.system.creation_time == "2024-01-15T11:34:56Z");
    CHECK(with_time(R"({"Time":"2024-01-15T12:34:56-02"})").message.system.creation_time == "2024-01-15T14:34:56Z");
}

TEST_CASE("time: a number is epoch seconds") {
    CHECK(with_time(R"({"ts":1700000000})", "/ts").message.system.creation_time == "2023-11-14T22:13:20Z");
    CHECK(with_time(R"({"ts":1700000000.25})", "/ts").message.system.creation_time == "2023-11-14T22:13:20.250Z");
}

TEST_CASE("time: a number above 10^11 is epoch milliseconds (Zigbee2MQTT's last_seen as epoch)") {
    CHECK(with_time(R"({"last_seen":1700000000123})", "/last_seen").message.system.creation_time ==
          "2023-11-14T22:13:20.123Z");
}

TEST_CASE("time: anything else is ignored and counted, and the message still accepted") {
    for (const char* body : {R"({"Time":"yesterday"})", R"({"Time":"2024-13-01T00:00:00"})",
                             R"({"Time":"2024-02-30T00:00:00Z"})", R"({"Time":true})", R"({"Time":{}})",
                             R"({"Time":"2024-01-15T12:34:56+1"})", R"({"Other":1})"}) {
        INFO(body);
        const auto t = with_time(body);
        CHECK(t.time_ignored);
        CHECK(t.message.system.creation_time.empty());
    }
}

// --- C2D --------------------------------------------------------------------------------------------

namespace {

std::shared_ptr<const RuleSet> tasmota_with_c2d(std::string c2d_topic) {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.device = "{device}";
    spec.c2d_topic = std::move(c2d_topic);
    return compiled({spec, topic_rule("no-c2d", "stat/{device}/POWER")});
}

HubMessage c2d_with(std::string name, std::string value) {
    HubMessage m;
    m.body = "ON";
    m.properties.set(std::move(name), std::move(value));
    return m;
}

}  // namespace

TEST_CASE("c2d_topic renders the route's captures and the C2D message's {prop:NAME}") {
    const auto set = tasmota_with_c2d("cmnd/{device}/{prop:command}");
    const auto t = translated(*set, mqtt("tele/pow1/SENSOR", payload("tasmota/tele_SENSOR_pow.json")));
    REQUIRE(t.verdict == Verdict::accepted);
    const auto topic = set->c2d_topic(t.route, c2d_with("command", "POWER"));
    REQUIRE(topic.has_value());
    REQUIRE(topic->ok());
    CHECK(topic->value() == "cmnd/pow1/POWER");
}

TEST_CASE("c2d_topic without {prop:} renders the captures and {gateway}") {
    const auto set = tasmota_with_c2d("{gateway}/cmnd/{device}/POWER");
    const Route route{"tasmota", {{"device", "pow1"}}};
    const auto topic = set->c2d_topic(route, HubMessage{});
    REQUIRE(topic.has_value());
    REQUIRE(topic->ok());
    CHECK(topic->value() == "pi-gw/cmnd/pow1/POWER");
}

TEST_CASE("a C2D message without the {prop:NAME} the c2d_topic needs is rejected, naming it") {
    const auto set = tasmota_with_c2d("cmnd/{device}/{prop:command}");
    const auto topic = set->c2d_topic(Route{"tasmota", {{"device", "pow1"}}}, c2d_with("other", "x"));
    REQUIRE(topic.has_value());
    REQUIRE_FALSE(topic->ok());
    CHECK(topic->error() == "C2D message has no application property 'command' that rule 'tasmota' needs for its "
                            "c2d_topic");
}

TEST_CASE("c2d_topic is nullopt for a rule without c2d_topic or a rule that is gone") {
    const auto set = tasmota_with_c2d("cmnd/{device}/{prop:command}");
    CHECK_FALSE(set->c2d_topic(Route{"no-c2d", {{"device", "pow1"}}}, c2d_with("command", "POWER")).has_value());
    CHECK_FALSE(set->c2d_topic(Route{"renamed", {{"device", "pow1"}}}, c2d_with("command", "POWER")).has_value());
}

TEST_CASE("a {prop:} value that would put a wildcard in the C2D topic is an error") {
    const auto set = tasmota_with_c2d("cmnd/{device}/{prop:command}");
    const auto topic = set->c2d_topic(Route{"tasmota", {{"device", "pow1"}}}, c2d_with("command", "#"));
    REQUIRE(topic.has_value());
    CHECK_FALSE(topic->ok());
}

TEST_CASE("a remembered route that lacks a capture the rule now needs is an error") {
    const auto set = tasmota_with_c2d("cmnd/{device}/POWER");
    const auto topic = set->c2d_topic(Route{"tasmota", {{"dev", "pow1"}}}, HubMessage{});
    REQUIRE(topic.has_value());
    REQUIRE_FALSE(topic->ok());
    CHECK(topic->error().find("capture 'device'") != std::string::npos);
}

// --- check-config errors ----------------------------------------------------------------------------

TEST_CASE("a rule with neither topic nor path is an error at its table's line") {
    RuleSpec spec;
    spec.name = "empty";
    spec.line = 12;
    const auto e = error_of(spec);
    CHECK(e.line == 12);
    CHECK(e.what == "rule 'empty': set topic (an MQTT pattern) or path (a CoAP pattern)");
}

TEST_CASE("a rule with both topic and path is an error") {
    auto spec = topic_rule("both", "tele/{device}/SENSOR");
    spec.path = "/sensors/{device}";
    spec.line = 3;
    spec.topic_line = 5;
    const auto e = error_of(spec);
    CHECK(e.line == 5);
    CHECK(e.what == "rule 'both': set topic (MQTT) or path (CoAP), not both");
}

TEST_CASE("a bad pattern is an error at the topic's line") {
    auto spec = topic_rule("wild", "tele/+/SENSOR");
    spec.line = 3;
    spec.topic_line = 4;
    const auto e = error_of(spec);
    CHECK(e.line == 4);
    CHECK(e.what.rfind("rule 'wild': topic 'tele/+/SENSOR': ", 0) == 0);
}

TEST_CASE("a CoAP path without its leading '/' is an error at the rule's line when no key line is known") {
    auto spec = path_rule("coap", "sensors/{device}");
    spec.line = 30;
    const auto e = error_of(spec);
    CHECK(e.line == 30);
    CHECK(e.what == "rule 'coap': path 'sensors/{device}': a CoAP path starts with '/', e.g. /sensors/{device}");
}

TEST_CASE("an unknown placeholder in device is an error at device's line, naming the captures") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.device = "{dev}";
    spec.line = 8;
    spec.device_line = 11;
    const auto e = error_of(spec);
    CHECK(e.line == 11);
    CHECK(e.what == "rule 'tasmota': device '{dev}': unknown placeholder {dev}: the pattern 'tele/{device}/SENSOR' "
                    "has no capture 'dev' (it has {device})");
}

TEST_CASE("a bad pointer in module is an error at module's line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.module = "{json:TempUnit}";
    spec.module_line = 14;
    const auto e = error_of(spec);
    CHECK(e.line == 14);
    CHECK(e.what.find("module '{json:TempUnit}'") != std::string::npos);
}

TEST_CASE("{prop:} in properties is an error at properties' line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.properties = {{"cmd", "{prop:command}"}};
    spec.properties_line = 15;
    const auto e = error_of(spec);
    CHECK(e.line == 15);
    CHECK(e.what.find("only in c2d_topic") != std::string::npos);
}

TEST_CASE("a bad application property name is an error at properties' line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.properties = {{"bad name", "x"}};
    spec.properties_line = 15;
    CHECK(error_of(spec).line == 15);
}

TEST_CASE("a property the gateway sets itself, or one set twice, is an error at properties' line") {
    auto reserved = topic_rule("tasmota", "tele/{device}/SENSOR");
    reserved.properties = {{"decode-error", "none"}};
    reserved.properties_line = 15;
    const auto e = error_of(reserved);
    CHECK(e.line == 15);
    CHECK(e.what == "rule 'tasmota': properties: 'decode-error' is set by the gateway");
    auto twice = topic_rule("tasmota", "tele/{device}/SENSOR");
    twice.properties = {{"site", "a"}, {"site", "b"}};
    CHECK(error_of(twice).what == "rule 'tasmota': properties: 'site' is set twice");
}

TEST_CASE("{json:} in c2d_topic is an error at c2d_topic's line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.c2d_topic = "cmnd/{json:/Id}/POWER";
    spec.c2d_topic_line = 20;
    const auto e = error_of(spec);
    CHECK(e.line == 20);
    CHECK(e.what.find("cannot be used here") != std::string::npos);
}

TEST_CASE("c2d_topic on a CoAP path rule is an error") {
    auto spec = path_rule("coap", "/sensors/{device}");
    spec.c2d_topic = "cmnd/{device}";
    spec.c2d_topic_line = 21;
    const auto e = error_of(spec);
    CHECK(e.line == 21);
    CHECK(e.what == "rule 'coap': c2d_topic applies to MQTT rules (topic), not CoAP paths");
}

TEST_CASE("field with a format other than text is an error at field's line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.field = "value";
    spec.field_line = 9;
    const auto e = error_of(spec);
    CHECK(e.line == 9);
    CHECK(e.what == "rule 'tasmota': field applies to format text only (this rule's format is json)");
}

TEST_CASE("{json:} in field is an error at field's line") {
    auto spec = topic_rule("shelly", "shellies/{device}/sensor/{metric}");
    spec.format = "text";
    spec.field = "{json:/x}";
    spec.field_line = 9;
    CHECK(error_of(spec).line == 9);
}

TEST_CASE("a bad time pointer is an error at time's line") {
    auto spec = topic_rule("tasmota", "tele/{device}/SENSOR");
    spec.time = "Time";
    spec.time_line = 10;
    const auto e = error_of(spec);
    CHECK(e.line == 10);
    CHECK(e.what.find("time 'Time'") != std::string::npos);
}

TEST_CASE("{json:} or time with format binary is an error (there is no JSON body)") {
    auto spec = topic_rule("raw", "meters/{device}/frame");
    spec.format = "binary";
    spec.time = "/t";
    spec.time_line = 6;
    CHECK(error_of(spec).line == 6);
}

TEST_CASE("an unknown format is an error") {
    auto spec = topic_rule("x", "tele/{device}/SENSOR");
    spec.format = "xml";
    spec.line = 2;
    const auto e = error_of(spec);
    CHECK(e.line == 2);
    CHECK(e.what == "rule 'x': format 'xml' is not one of json, cbor, senml, text, binary, auto");
}

TEST_CASE("on_decode_error other than raw or refuse is an error") {
    auto spec = topic_rule("x", "tele/{device}/SENSOR");
    spec.on_decode_error = "drop";
    spec.line = 2;
    CHECK(error_of(spec).what == "rule 'x': on_decode_error 'drop' is not raw or refuse");
}

TEST_CASE("a listener name no [[listener]] has is an error") {
    auto spec = topic_rule("x", "tele/{device}/SENSOR");
    spec.listeners = {"lan", "lna"};
    spec.line = 2;
    CHECK(error_of(spec).what == "rule 'x': listeners: no [[listener]] is named 'lna'");
}

TEST_CASE("a literal device id that breaks IoT Hub's id rule is an error at device's line") {
    auto spec = topic_rule("x", "tele/{device}/SENSOR");
    spec.device = "kitchen sensor";
    spec.device_line = 7;
    CHECK(error_of(spec).line == 7);
}

TEST_CASE("a duplicate rule name is an error at the second rule's line") {
    auto first = topic_rule("tasmota", "tele/{device}/SENSOR");
    first.line = 10;
    auto second = topic_rule("tasmota", "tele/{device}/STATE");
    second.line = 20;
    const auto errors = errors_of({first, second});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 20);
    CHECK(errors[0].what == "rule 'tasmota': the name is already used by the rule at line 10; rule names must be "
                            "unique (C2D finds a device's rule by its name)");
}

TEST_CASE("rules without a name are called rule-<n> by their position, in errors too") {
    RuleSpec first;
    first.topic = "tele/{device}/SENSOR";
    RuleSpec second;
    second.topic = "tele/{device}/STATE";
    second.device = "{dev}";
    second.line = 40;
    const auto errors = errors_of({first, second});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].what.rfind("rule 'rule-2': ", 0) == 0);
    const auto set = compiled({first});
    CHECK(translated(*set, mqtt("tele/pow1/SENSOR", "{}")).rule == "rule-1");
}

TEST_CASE("every error of every rule is reported, and no rule set is made") {
    auto a = topic_rule("a", "tele/#");
    a.line = 1;
    auto b = topic_rule("b", "tele/{device}/STATE");
    b.format = "yaml";
    b.line = 9;
    const auto errors = errors_of({a, b});
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].line == 1);
    CHECK(errors[1].line == 9);
}
