// `hubgate rules test`: what a device's payload would become, without a device (DESIGN.md
// "Translation rules"). Runs the config's rules and then IoT Hub's door rules on one payload and
// prints the hub message: how a user debugs a rule. Changes nothing, needs no running gateway.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/coap/coap_paths.hpp"
#include "adapters/mqtt/topics.hpp"
#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/model/crypto.hpp"
#include "gateway/model/hub_message.hpp"
#include "gateway/model/message_id.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/translate/rule_set.hpp"
#include "store/device_registry.hpp"

namespace hubgate::app {
namespace {

bool is_udp(config::Protocol p) { return p == config::Protocol::coap || p == config::Protocol::coaps; }

std::optional<std::string> read_payload(const std::string& file) {
    if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return std::move(bytes).str();
}

// The devices with keys, as the gateway knows them: the registry's (`hubgate devices add`), then
// the config's, whose entries win. No store yet: the config's alone.
void load_known_devices(const config::Config& cfg, DeviceDirectory& directory) {
    std::vector<DeviceRecord> records;
    std::error_code ec;
    if (std::filesystem::exists(cfg.store.path, ec)) {
        auto reg = store::DeviceRegistry::open(cfg.store.path, false);
        auto listed = reg ? (*reg)->registered() : Result<std::vector<store::RegisteredDevice>>(Error{reg.error()});
        if (!listed)
            std::cerr << "warning: the device registry cannot be read (" << listed.error()
                      << "); only the config's devices are known\n";
        else
            for (auto& d : *listed) records.emplace_back(d.id, d.key, d.module_id, d.children);
    }
    for (const auto& d : cfg.devices) {
        std::erase_if(records, [&](const DeviceRecord& r) { return r.id == d.id; });
        records.emplace_back(d.id, d.key, d.module_id, d.children);
    }
    directory.replace_static(std::move(records));
}

const config::Listener* pick_listener(const config::Config& cfg, const std::string& name, bool coap) {
    for (const auto& l : cfg.listeners) {
        if (!name.empty() ? l.name == name : is_udp(l.protocol) == coap) return &l;
    }
    return nullptr;
}

// What the listener does with a message no rule matches (config.hpp: the default depends on
// whether some rule names this listener).
config::Unmatched unmatched_mode(const config::Listener& l, const translate::RuleSet& rules) {
    if (l.unmatched) return *l.unmatched;
    const auto t = is_udp(l.protocol) ? translate::Transport::coap : translate::Transport::mqtt;
    return !is_udp(l.protocol) && rules.names_listener(l.name, t) ? config::Unmatched::drop
                                                                  : config::Unmatched::refuse;
}

std::string unmatched_action(config::Unmatched u, bool coap) {
    switch (u) {
        case config::Unmatched::refuse:
            return coap ? "answer 4.04 (unmatched = refuse)" : "close the connection (unmatched = refuse)";
        case config::Unmatched::drop:
            return coap ? "answer 4.04 (unmatched = drop)" : "acknowledge and drop it (unmatched = drop)";
        case config::Unmatched::raw:
            return std::string("store it as bytes with property ") + (coap ? "coap-path" : "mqtt-topic") +
                   " (unmatched = raw)";
    }
    return "?";
}

void print_message(const HubMessage& m) {
    std::cout << "device: " << m.device_id << '\n';
    std::cout << "module: " << (m.module_id.empty() ? "(none)" : m.module_id) << '\n';

    // message id left out: the door gives a message without one a new UUID each time.
    const std::pair<const char*, const std::string*> system[] = {
        {"correlation-id", &m.system.correlation_id},   {"user-id", &m.system.user_id},
        {"content-type", &m.system.content_type},       {"content-encoding", &m.system.content_encoding},
        {"creation-time", &m.system.creation_time},     {"expiry-time", &m.system.absolute_expiry_time},
    };
    std::cout << "system properties:";
    bool any = false;
    for (const auto& [name, value] : system) {
        if (value->empty()) continue;
        std::cout << "\n  " << name << ": " << *value;
        any = true;
    }
    std::cout << (any ? "\n" : " (none)\n");

    std::cout << "application properties:" << (m.properties.empty() ? " (none)" : "") << '\n';
    for (const auto& p : m.properties) {
        std::cout << "  " << p.name;
        if (p.value) std::cout << ": " << *p.value;
        std::cout << '\n';
    }

    // The decoders make JSON bodies UTF-8 with content type application/json; anything else went
    // through as bytes and is shown as base64 so the terminal gets exactly what the hub gets.
    if (m.system.content_type == "application/json") {
        std::cout << "body (JSON, " << m.body.size() << " bytes):\n" << m.body << '\n';
    } else {
        std::cout << "body (" << m.body.size() << " bytes, base64):\n" << base64_encode(m.body) << '\n';
    }
}

}  // namespace

int cmd_rules_test(const std::string& config_path, const std::string& topic, const std::string& path,
                   const std::string& payload_file, int content_format, const std::string& device,
                   const std::string& client, const std::string& listener_name) {
    const auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    const config::Config& cfg = *loaded.config;

    if (topic.empty() == path.empty()) {
        std::cerr << "give either --topic (an MQTT topic) or --path (a CoAP path)\n";
        return kExitFailure;
    }
    const bool coap = !path.empty();
    const auto payload = read_payload(payload_file);
    if (!payload) {
        std::cerr << "cannot read the payload file " << payload_file << '\n';
        return kExitFailure;
    }

    const config::Listener* listener = pick_listener(cfg, listener_name, coap);
    if (!listener) {
        if (!listener_name.empty())
            std::cerr << config_path << ": no [[listener]] named \"" << listener_name << "\"\n";
        else
            std::cerr << config_path << ": no " << (coap ? "coap/coaps" : "mqtt/mqtts")
                      << " listener to try the " << (coap ? "path" : "topic") << " on\n";
        return kExitFailure;
    }
    if (is_udp(listener->protocol) != coap) {
        std::cerr << "listener \"" << listener->name << "\" is a " << config::to_string(listener->protocol)
                  << " listener: use " << (coap ? "--topic" : "--path") << " with it\n";
        return kExitFailure;
    }

    std::vector<std::string> listener_names;
    for (const auto& l : cfg.listeners)
        if (!l.name.empty()) listener_names.push_back(l.name);
    std::vector<translate::CompileError> errors;
    const auto rules = translate::RuleSet::compile(cfg.rules, listener_names, cfg.gateway.id, errors);
    if (!rules) {  // load_config() compiled them already; kept for a rule set that changed meanwhile
        for (const auto& e : errors)
            std::cerr << config::ConfigError{config_path, e.line, e.what}.to_string() << '\n';
        return kExitBadConfig;
    }

    // The connection's side of the message, as an adapter would fill it in.
    DeviceDirectory devices;
    load_known_devices(cfg, devices);
    const auto self = device.empty() ? std::nullopt : devices.find(device);
    // CoAP paths reach the rules with their leading '/' ("/sensors/t1"), however the user wrote it.
    const std::string written = coap ? (path.front() == '/' ? path : "/" + path) : topic;
    std::string_view target = written;
    std::string_view query;
    if (const auto q = target.find('?'); coap && q != std::string_view::npos) {
        query = target.substr(q + 1);
        target = target.substr(0, q);
    }
    HubMessage query_props;  // CoAP Uri-Query options become application properties
    if (auto bad = apply_property_bag(query, query_props)) {
        std::cerr << "the path's query is not valid: " << bad->reason << '\n';
        return kExitFailure;
    }

    translate::Inbound in;
    in.transport = coap ? translate::Transport::coap : translate::Transport::mqtt;
    in.listener = listener->name;
    in.topic = target;
    in.payload = *payload;
    if (content_format >= 0) in.content_format = static_cast<std::uint16_t>(content_format);
    in.auth_device = device;
    in.client_id = client;
    in.default_module = self && !self->module_id.empty() ? self->module_id : listener->module_id;
    in.query = coap ? &query_props.properties : nullptr;
    in.receive_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    const translate::ChildPolicy children = [&devices](std::string_view authenticated, std::string_view id) {
        return devices.may_speak_for(authenticated, id);
    };

    std::cout << "listener: " << (listener->name.empty() ? "(unnamed)" : listener->name) << " ("
              << config::to_string(listener->protocol) << ", auth " << config::to_string(listener->auth) << ")\n";
    std::cout << (coap ? "path: " : "topic: ") << target << " (" << payload->size() << " bytes";
    if (content_format >= 0) std::cout << ", content-format " << content_format;
    std::cout << ")\n";
    std::cout << "identity: "
              << (device.empty() ? "none (as on an auth = \"none\" listener: device ids are taken as given)"
                                 : device)
              << '\n';

    // DESIGN.md: the IoT Hub dialect keeps working on every listener; rules see only what is outside it.
    const bool dialect = coap ? coap::match_path(target.substr(1)).kind != coap::PathMatch::Kind::not_found
                              : mqtt::parse_d2c_topic(target).has_value();
    if (dialect) {
        std::cout << "no rule applies: this is IoT Hub's own " << (coap ? "path" : "topic")
                  << ", which the listener handles as IoT Hub does (docs/" << (coap ? "coap" : "mqtt") << ".md)\n";
        return kExitFailure;
    }

    const translate::Translation t = rules->translate(in, children);
    if (t.verdict == translate::Verdict::unmatched) {
        std::cout << "no rule matches: the listener would "
                  << unmatched_action(unmatched_mode(*listener, *rules), coap) << '\n';
        return kExitFailure;
    }
    std::cout << "rule: " << t.rule << '\n';
    std::cout << "verdict: " << translate::to_string(t.verdict) << '\n';
    if (t.verdict != translate::Verdict::accepted) {
        if (!t.reason.empty()) std::cout << "reason: " << t.reason << '\n';
        std::cout << "hub: not sent\n";
        return kExitFailure;
    }
    if (t.decode_error) std::cout << "decode error: " << t.reason << " (body kept as it came)\n";
    if (t.time_ignored) std::cout << "note: the rule's time is not a time here; no creation time\n";

    HubMessage at_door = t.message;
    MessageIdGenerator ids;
    if (auto refused = normalize_message(at_door, ids)) {
        print_message(t.message);
        std::cout << "hub: refused at the door: " << refused->reason << '\n';
        return kExitFailure;
    }
    print_message(at_door);
    std::cout << "hub: accepted (" << hub_size(at_door) << " of " << kMaxHubMessageBytes
              << " bytes by IoT Hub's size rule)\n";
    return kExitOk;
}

}  // namespace hubgate::app
