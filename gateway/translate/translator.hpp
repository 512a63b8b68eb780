// The translation stage as the adapters see it: the current rule set (swapped whole on SIGHUP),
// who may speak for whom (bridges' children), a labelled counter and a rate-limited log line for
// every outcome, and the route each device's last accepted message took (so C2D can reach it).
// Lives on the io thread, like the adapters that call it: no locks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/translate/rule_set.hpp"

namespace hubgate::metrics {
class Registry;
class Counter;
}  // namespace hubgate::metrics

namespace hubgate::translate {

// Where a device's C2D goes: the rule and captures of its last accepted message, and the bridge
// whose connection carries it ("" = the device's own connection).
struct DeviceRoute {
    Route route;
    std::string via;
};

// Captures as they are persisted: URL-encoded `name=value&...`, in pattern order.
std::string encode_captures(const std::vector<std::pair<std::string, std::string>>& captures);
std::optional<std::vector<std::pair<std::string, std::string>>> decode_captures(std::string_view text);

class Translator {
public:
    explicit Translator(metrics::Registry& registry);
    ~Translator();
    Translator(const Translator&) = delete;
    Translator& operator=(const Translator&) = delete;

    void set_rules(std::shared_ptr<const RuleSet> rules);
    const std::shared_ptr<const RuleSet>& rules() const noexcept { return rules_; }
    void set_child_policy(ChildPolicy policy) { children_ = std::move(policy); }
    // Told when a device's route changes (to persist it); not told for an unchanged route.
    void set_route_listener(std::function<void(const std::string& device, const DeviceRoute&)> fn) {
        route_listener_ = std::move(fn);
    }
    // Routes read back from the store at start.
    void restore_routes(std::unordered_map<std::string, DeviceRoute> routes) { routes_ = std::move(routes); }

    bool names_listener(std::string_view listener, Transport t) const noexcept {
        return rules_ && rules_->names_listener(listener, t);
    }

    // Runs the rules; counts and (rate-limited) logs every outcome but `accepted`, which the
    // caller confirms with accepted() once the door rules passed too.
    Translation translate(const Inbound& in);
    // The message passed the door rules: count it and remember the device's route. True when the
    // route is new or changed.
    bool accepted(const Translation& t, std::string_view via);
    // A translated message the door rules refused (size, charsets, spoofed property names).
    void refused_at_door(const Translation& t, const char* reason, std::string_view why);
    // A message no rule matched, with what the listener did about it ("refuse", "drop", "raw").
    void unmatched(std::string_view listener, const char* action, std::string_view topic, std::string_view device);

    const DeviceRoute* route_of(const std::string& device) const;
    // The devices whose last message came through bridge `bridge` (its children).
    std::vector<std::string> routed_via(std::string_view bridge) const;
    // The MQTT topic for a C2D message to `device`: nullopt = IoT Hub's devicebound topic (no route,
    // or a rule without c2d_topic); an error = reject the message with that reason.
    std::optional<Result<std::string>> c2d_topic(const std::string& device, const HubMessage& m) const;

private:
    metrics::Counter& counter(const std::string& rule, const char* outcome);
    // The per-message outcomes, looked up by rule name without building a key.
    struct RuleCounters {
        metrics::Counter* accepted = nullptr;
        metrics::Counter* decode_error = nullptr;
    };
    RuleCounters& rule_counters(const std::string& rule);
    void log_limited(const std::string& key, std::string_view line);

    metrics::Registry& registry_;
    std::shared_ptr<const RuleSet> rules_;
    ChildPolicy children_;
    std::function<void(const std::string&, const DeviceRoute&)> route_listener_;
    std::unordered_map<std::string, DeviceRoute> routes_;
    std::unordered_map<std::string, metrics::Counter*> counters_;  // "rule\0outcome" -> counter (rare outcomes)
    std::unordered_map<std::string, RuleCounters> rule_counters_;
    struct LogState {
        std::chrono::steady_clock::time_point at;
        std::uint64_t suppressed = 0;
    };
    std::unordered_map<std::string, LogState> logged_;
    metrics::Counter* time_ignored_ = nullptr;
};

}  // namespace hubgate::translate
