// libFuzzer target: the translation rule engine (gateway/translate/rule_set.hpp). Two kinds of input:
//  - "TOPIC\nPAYLOAD": matched against a fixed set of rules for the device families DESIGN.md names,
//    on an open listener, an authenticated bridge's and an unnamed one (a TOPIC starting with '/'
//    is also tried as a CoAP path);
//  - "rule\tTOPIC-PATTERN\tDEVICE\tPROPERTY\tTIME\tC2D\nTOPIC\nPAYLOAD": that rule is compiled first
//    (patterns, templates and pointers from the fuzzer), then the message translated.
// Whatever is accepted must carry a valid device id, a route whose captures come from the topic and
// a creation time IoT Hub accepts; a refusal always says why; translating twice gives the same
// result. Seeds: corpus/rule_match/. Run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/model/validation.hpp"
#include "gateway/translate/rule_set.hpp"

using namespace hubgate;
using namespace hubgate::translate;

namespace {

const std::vector<std::string> kListeners{"lan", "bridges", "coap"};

RuleSpec rule(std::string name, std::string topic, std::string format = "json") {
    RuleSpec s;
    s.name = std::move(name);
    (topic.starts_with("/") ? s.path : s.topic) = std::move(topic);
    s.format = std::move(format);
    return s;
}

std::shared_ptr<const RuleSet> fixed_rules() {
    std::vector<RuleSpec> specs;
    auto ds = rule("ds18b20", "tele/{device}/SENSOR");
    ds.device = "{json:/DS18B20/Id}";
    ds.module = "tasmota";
    ds.time = "/Time";
    ds.properties = {{"source", "tasmota"}, {"site", "{gateway}"}, {"temperature", "{json:/DS18B20/Temperature}"}};
    ds.c2d_topic = "cmnd/{device}/{prop:command}";
    specs.push_back(ds);
    auto sensor = rule("tasmota-sensor", "tele/{device}/SENSOR");
    sensor.device = "{device}";
    sensor.time = "/Time";
    sensor.c2d_topic = "cmnd/{device}/{prop:command}";
    specs.push_back(sensor);
    auto lwt = rule("tasmota-lwt", "tele/{device}/LWT", "text");
    lwt.device = "{device}";
    lwt.field = "lwt";
    lwt.on_decode_error = "refuse";
    specs.push_back(lwt);
    auto shelly = rule("shelly-relay", "shellies/{device}/relay/{n}", "text");
    shelly.device = "{device}";
    shelly.field = "relay_{n}";
    shelly.c2d_topic = "shellies/{device}/relay/{n}/command";
    specs.push_back(shelly);
    auto z2m = rule("z2m", "zigbee2mqtt/{device}");
    z2m.listeners = {"bridges"};
    z2m.device = "{device}";
    z2m.time = "/last_seen";
    specs.push_back(z2m);
    auto z2m_rest = rule("z2m-rest", "zigbee2mqtt/{rest*}", "auto");
    z2m_rest.properties = {{"z2m-topic", "{rest}"}, {"sender", "{client}"}};
    specs.push_back(z2m_rest);
    auto homie_state = rule("homie-state", "homie/{device}/$state", "text");
    homie_state.device = "{device}";
    homie_state.field = "state";
    specs.push_back(homie_state);
    auto homie = rule("homie", "homie/{device}/{node}/{prop_name}", "text");
    homie.device = "{device}";
    homie.module = "{node}";
    homie.field = "{prop_name}";
    specs.push_back(homie);
    auto esphome = rule("esphome", "{prefix}/sensor/{name}/state", "text");
    esphome.device = "{prefix}";
    esphome.field = "{name}";
    specs.push_back(esphome);
    auto coap = rule("coap-senml", "/sensors/{device}", "senml");
    coap.device = "{device}";
    coap.properties = {{"name", "{json:/0/n}"}};
    coap.time = "/0/t";
    specs.push_back(coap);
    auto coap_rest = rule("coap-rest", "/{rest*}", "auto");
    coap_rest.properties = {{"path", "{rest}"}};
    specs.push_back(coap_rest);
    std::vector<CompileError> errors;
    auto set = RuleSet::compile(specs, kListeners, "pi-gw", errors);
    if (!set) std::abort();
    return set;
}

std::string_view next_field(std::string_view& text, char sep) {
    const auto at = text.find(sep);
    const auto field = text.substr(0, at);
    text.remove_prefix(at == std::string_view::npos ? text.size() : at + 1);
    return field;
}

void check(const RuleSet& set, const Inbound& in, const ChildPolicy& children) {
    const Translation t = set.translate(in, children);
    const Translation again = set.translate(in, children);
    if (t.verdict != again.verdict || !(t.message == again.message) || t.rule != again.rule ||
        t.route.captures != again.route.captures)
        std::abort();  // per-thread scratch leaked from one translation into the next
    if (t.verdict != Verdict::accepted) {
        if (t.reason.empty()) std::abort();
        if (t.verdict == Verdict::unmatched && !t.rule.empty()) std::abort();
        return;
    }
    if (!is_hub_id(t.message.device_id) || t.rule.empty() || t.route.rule != t.rule) std::abort();
    if (!in.auth_device.empty() && t.message.device_id != in.auth_device &&
        !children(in.auth_device, t.message.device_id))
        std::abort();
    for (const auto& [name, value] : t.route.captures)
        if (name.empty() || in.topic.find(value) == std::string_view::npos) std::abort();
    if (t.message.system.content_type.empty()) std::abort();
    if (t.decode_error != (t.message.properties.find("decode-error") != nullptr)) std::abort();
    if (!t.message.system.creation_time.empty() &&
        check_iso8601_utc("creation time", t.message.system.creation_time))
        std::abort();

    HubMessage c2d;
    c2d.properties.set("command", std::string(in.payload.substr(0, 16)));
    if (auto topic = set.c2d_topic(t.route, c2d)) {
        if (topic->ok()) {
            const auto& s = topic->value();
            if (s.empty() || s.find_first_of("+#") != std::string::npos) std::abort();
        } else if (topic->error().empty()) {
            std::abort();
        }
    }
}

void check_all(const RuleSet& set, std::string_view topic, std::string_view payload) {
    const ChildPolicy kitchen_children = [](std::string_view, std::string_view device) {
        return device.starts_with("kitchen");
    };
    Inbound in;
    in.topic = topic;
    in.payload = payload;
    in.receive_ms = 1700000000000;
    in.listener = "lan";
    in.client_id = "DVES_5A1B2C";
    check(set, in, kitchen_children);

    in.listener = "bridges";
    in.auth_device = "z2m-bridge";
    in.default_module = "edge";
    check(set, in, kitchen_children);

    in.listener = "";
    in.auth_device = "";
    check(set, in, kitchen_children);

    if (topic.starts_with("/")) {
        AppProperties query;
        query.set("batch", std::string("1"));
        in.transport = Transport::coap;
        in.listener = "coap";
        in.client_id = "";
        in.query = &query;
        check(set, in, kitchen_children);
        in.content_format = static_cast<std::uint16_t>(payload.empty() ? 0 : static_cast<unsigned char>(payload[0]) % 120);
        check(set, in, kitchen_children);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto rules = fixed_rules();
    std::string_view input(reinterpret_cast<const char*>(data), size);

    if (input.starts_with("rule\t")) {
        input.remove_prefix(5);
        std::string_view header = next_field(input, '\n');
        RuleSpec spec;
        spec.name = "fuzz";
        spec.line = 1;
        const auto pattern = next_field(header, '\t');
        (pattern.starts_with("/") ? spec.path : spec.topic) = std::string(pattern);
        spec.device = std::string(next_field(header, '\t'));
        if (const auto property = next_field(header, '\t'); !property.empty()) spec.properties = {{"p", std::string(property)}};
        spec.time = std::string(next_field(header, '\t'));
        spec.c2d_topic = std::string(next_field(header, '\t'));
        std::vector<CompileError> errors;
        const auto set = RuleSet::compile({spec}, kListeners, "pi-gw", errors);
        if (!set) {
            if (errors.empty()) std::abort();
            for (const auto& e : errors)
                if (e.what.empty() || e.line != 1) std::abort();
            return 0;
        }
        if (!errors.empty()) std::abort();
        const auto topic = next_field(input, '\n');
        check_all(*set, topic, input);
        return 0;
    }

    const auto topic = next_field(input, '\n');
    check_all(*rules, topic, input);
    return 0;
}
