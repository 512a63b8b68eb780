#include "gateway/translate/translator.hpp"

#include <spdlog/spdlog.h>

#include "gateway/metrics/registry.hpp"
#include "gateway/model/url_encoding.hpp"

namespace hubgate::translate {

namespace {

// One line per (rule, outcome) per minute at most, so a misconfigured fleet cannot flood the log.
constexpr std::chrono::seconds kLogInterval{60};

}  // namespace

std::string encode_captures(const std::vector<std::pair<std::string, std::string>>& captures) {
    std::string out;
    for (const auto& [name, value] : captures) {
        if (!out.empty()) out += '&';
        url_encode_to(out, name);
        out += '=';
        url_encode_to(out, value);
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> decode_captures(std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const std::string_view item = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        const auto eq = item.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        auto name = url_decode(item.substr(0, eq));
        auto value = url_decode(item.substr(eq + 1));
        if (!name || !value) return std::nullopt;
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

Translator::Translator(metrics::Registry& registry)
    : registry_(registry),
      time_ignored_(&registry.counter("hubgate_translate_time_ignored_total",
                                      "Rule time pointers that gave no usable time (the message then has no creation time)")) {}

Translator::~Translator() = default;

void Translator::set_rules(std::shared_ptr<const RuleSet> rules) { rules_ = std::move(rules); }

metrics::Counter& Translator::counter(const std::string& rule, const char* outcome) {
    std::string key = rule;
    key += '\0';
    key += outcome;
    auto it = counters_.find(key);
    if (it != counters_.end()) return *it->second;
    auto& c = registry_.counter("hubgate_translate_messages_total", "Messages through translation rules, by rule and outcome",
                                {{"rule", rule}, {"outcome", outcome}});
    counters_.emplace(std::move(key), &c);
    return c;
}

Translator::RuleCounters& Translator::rule_counters(const std::string& rule) {
    auto it = rule_counters_.find(rule);
    if (it != rule_counters_.end()) return it->second;
    RuleCounters c{&counter(rule, "accepted"), &counter(rule, "decode_error")};
    return rule_counters_.emplace(rule, c).first->second;
}

void Translator::log_limited(const std::string& key, std::string_view line) {
    const auto now = std::chrono::steady_clock::now();
    auto [it, first] = logged_.try_emplace(key);
    LogState& st = it->second;
    if (!first && now - st.at < kLogInterval) {
        ++st.suppressed;
        return;
    }
    if (st.suppressed)
        spdlog::warn("translate: {} ({} more like it in the last minute)", line, st.suppressed);
    else
        spdlog::warn("translate: {}", line);
    st.at = now;
    st.suppressed = 0;
    if (logged_.size() > 10000) logged_.clear();  // bounded whatever keys devices make up
}

Translation Translator::translate(const Inbound& in) {
    static const ChildPolicy none = [](std::string_view, std::string_view) { return false; };
    if (!rules_) {
        Translation t;
        t.verdict = Verdict::unmatched;
        return t;
    }
    Translation t = rules_->translate(in, children_ ? children_ : none);
    if (t.time_ignored) time_ignored_->inc();
    switch (t.verdict) {
        case Verdict::accepted:
        case Verdict::unmatched:
            break;
        default: {
            counter(t.rule, to_string(t.verdict)).inc();
            const std::string who = in.auth_device.empty() ? std::string(in.client_id) : std::string(in.auth_device);
            log_limited(t.rule + '\0' + to_string(t.verdict),
                        "rule " + t.rule + ", device " + who + ": " + to_string(t.verdict) + ": " + t.reason);
        }
    }
    return t;
}

bool Translator::accepted(const Translation& t, std::string_view via) {
    RuleCounters& c = rule_counters(t.rule);
    (t.decode_error ? c.decode_error : c.accepted)->inc();
    if (t.decode_error)
        log_limited(t.rule + std::string(1, '\0') + "decode_error",
                    "rule " + t.rule + ", device " + t.message.device_id + ": payload kept raw: " + t.reason);
    auto it = routes_.find(t.message.device_id);
    if (it != routes_.end() && it->second.route.rule == t.route.rule && it->second.route.captures == t.route.captures &&
        it->second.via == via)
        return false;  // the common case: nothing new to remember
    DeviceRoute r{t.route, std::string(via)};
    if (route_listener_) route_listener_(t.message.device_id, r);
    routes_.insert_or_assign(t.message.device_id, std::move(r));
    return true;
}

std::vector<std::string> Translator::routed_via(std::string_view bridge) const {
    std::vector<std::string> out;
    for (const auto& [device, r] : routes_)
        if (r.via == bridge) out.push_back(device);
    return out;
}

void Translator::refused_at_door(const Translation& t, const char* reason, std::string_view why) {
    counter(t.rule, reason).inc();
    log_limited(t.rule + '\0' + reason,
                "rule " + t.rule + ", device " + t.message.device_id + ": refused (" + reason + "): " + std::string(why));
}

void Translator::unmatched(std::string_view listener, const char* action, std::string_view topic,
                           std::string_view device) {
    const std::string l = listener.empty() ? "(unnamed)" : std::string(listener);
    std::string key = std::string(1, '\0') + "unmatched " + l + ' ' + action;
    auto it = counters_.find(key);
    if (it == counters_.end())
        it = counters_
                 .emplace(key, &registry_.counter("hubgate_translate_unmatched_total",
                                                  "Messages no rule matched, by listener and what was done",
                                                  {{"listener", l}, {"action", action}}))
                 .first;
    it->second->inc();
    log_limited(key, "listener " + l + ", device " + std::string(device) + ": no rule matches '" +
                         std::string(topic.substr(0, 200)) + "' (" + action + ")");
}

const DeviceRoute* Translator::route_of(const std::string& device) const {
    auto it = routes_.find(device);
    return it == routes_.end() ? nullptr : &it->second;
}

std::optional<Result<std::string>> Translator::c2d_topic(const std::string& device, const HubMessage& m) const {
    const DeviceRoute* r = route_of(device);
    if (!r || !rules_) return std::nullopt;
    return rules_->c2d_topic(r->route, m);
}

}  // namespace hubgate::translate
