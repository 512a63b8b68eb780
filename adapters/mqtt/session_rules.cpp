// The MQTT session's side of translation (DESIGN.md "Translation rules"): a PUBLISH outside the IoT
// Hub dialect goes through the listener's rules; what no rule matches follows the listener's
// `unmatched`; a connection that ends without DISCONNECT publishes its Will the same way.
// Refusals here never cost a commodity device its connection, except `unmatched = "refuse"`.
#include "adapters/mqtt/session.hpp"

#include <spdlog/spdlog.h>

#include "gateway/devices/device_directory.hpp"
#include "adapters/mqtt/topics.hpp"
#include "gateway/model/clock.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/translate/translator.hpp"

namespace hubgate::mqtt {

bool Session::rules_listener() const noexcept {
    return core_.options.translator &&
           core_.options.translator->names_listener(listener_.config.name, translate::Transport::mqtt);
}

// A QoS 1 message acknowledged without being stored: its PUBACK waits for those of the messages
// before it (MQTT 3.1.1 §4.6 keeps PUBACKs in order).
void Session::ack_drop(std::uint8_t qos, std::uint16_t packet_id) {
    if (qos == 0) return;
    pending_drops_.emplace_back(pending_messages_.size(), packet_id);
}

Session::Fate Session::translate_publish(std::string_view topic, std::string_view payload, HubMessage& out,
                                         bool will) {
    auto* tr = core_.options.translator;
    const bool named = rules_listener();
    if (tr) {
        translate::Inbound in;
        in.transport = translate::Transport::mqtt;
        in.listener = listener_.config.name;
        in.topic = topic;
        in.payload = payload;
        // On an open listener the rule's device id is taken as given (the operator opened it).
        in.auth_device = listener_.auth == AuthMode::none ? std::string_view{} : std::string_view(device_id_);
        in.client_id = client_id_;
        in.default_module = !module_id_.empty() ? std::string_view(module_id_) : std::string_view(listener_.config.module_id);
        in.receive_ms = unix_ms();
        translate::Translation t = tr->translate(in);
        switch (t.verdict) {
            case translate::Verdict::accepted: {
                if (auto err = normalize_message(t.message, core_.ids)) {
                    tr->refused_at_door(t, check_size(t.message) ? "oversize" : "invalid_message", err->reason);
                    return Fate::ack_drop;
                }
                const bool other = t.message.device_id != device_id_;
                const bool child = other && listener_.auth != AuthMode::none;
                // A bridge's child, or a device a rule names on an open listener, becomes a known
                // device (so C2D for it is accepted), bounded like ids on open listeners are. Asked
                // only for a device without a route yet: not once per message.
                if (other && !tr->route_of(t.message.device_id) &&
                    core_.devices.record_seen(t.message.device_id) == DeviceDirectory::Seen::full) {
                    tr->refused_at_door(t, "seen_devices_full",
                                        "the gateway keeps gateway.max_seen_devices ids and is full; "
                                        "`hubgate devices remove` forgets one (then reload)");
                    return Fate::ack_drop;
                }
                if (tr->accepted(t, child ? std::string_view(device_id_) : std::string_view{}) && child &&
                    reachable() && core_.reachability)
                    core_.reachability(t.message.device_id, true);
                out = std::move(t.message);
                return Fate::store;
            }
            case translate::Verdict::unmatched:
                break;
            default:
                return Fate::ack_drop;  // counted and logged by the translator
        }
    }
    // No rule matched: the listener's `unmatched`, by default drop where rules apply, else refuse.
    const config::Unmatched mode = listener_.config.unmatched.value_or(named ? config::Unmatched::drop
                                                                             : config::Unmatched::refuse);
    switch (mode) {
        case config::Unmatched::refuse:
            if (tr) tr->unmatched(listener_.config.name, "refuse", topic, device_id_);
            if (will) return Fate::close;  // the connection is over already
            refuse_message("wrong_topic", "PUBLISH to '" + std::string(topic.substr(0, 200)) + "'; expected " +
                                              kD2cTopicPattern + (named ? " or a topic a rule matches" : ""));
            return Fate::close;
        case config::Unmatched::drop:
            if (tr) tr->unmatched(listener_.config.name, "drop", topic, device_id_);
            return Fate::ack_drop;
        case config::Unmatched::raw:
            break;
    }
    out = HubMessage{};
    out.body.assign(payload);
    out.device_id = device_id_;
    out.module_id = !module_id_.empty() ? module_id_ : listener_.config.module_id;
    out.system.content_type = "application/octet-stream";
    out.properties.set("mqtt-topic", std::string(topic));
    if (auto err = normalize_message(out, core_.ids)) {
        core_.counters.refused_message(check_size(out) ? "oversize" : "invalid_message");
        spdlog::warn("mqtt {} device {}: unmatched message on '{}' cannot be kept raw: {}", remote_, device_id_,
                     topic.substr(0, 200), err->reason);
        return Fate::ack_drop;
    }
    if (tr) tr->unmatched(listener_.config.name, "raw", topic, device_id_);
    return Fate::store;
}

// MQTT 3.1.1 §3.1.2.5: the Will is published when the connection ends without DISCONNECT. It is
// stored as the device's message (through the rules), with nobody left to acknowledge.
void Session::publish_will() {
    WillMessage w = std::move(*will_);
    will_.reset();
    HubMessage m;
    const auto d2c = parse_d2c_topic(w.topic);
    if (d2c && d2c->device_id == device_id_) {
        m.body = std::move(w.payload);
        m.device_id = device_id_;
        m.module_id = !d2c->module_id.empty() ? std::string(d2c->module_id)
                      : !module_id_.empty()   ? module_id_
                                              : listener_.config.module_id;
        if (apply_property_bag(d2c->property_bag, m) || normalize_message(m, core_.ids)) return;
    } else if (d2c || translate_publish(w.topic, w.payload, m, true) != Fate::store) {
        return;  // another device's events topic, or refused (counted and logged)
    }
    core_.counters.wills.inc();
    spdlog::info("mqtt {} device {}: connection ended without DISCONNECT; storing its Will on '{}'", remote_,
                 device_id_, w.topic.substr(0, 200));
    std::vector<HubMessage> one;
    one.push_back(std::move(m));
    core_.ingest.ingest(std::move(one), [](IngestResult) {});
}

}  // namespace hubgate::mqtt
