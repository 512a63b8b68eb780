#include "adapters/mqtt/topics.hpp"

#include <algorithm>

#include "gateway/model/property_bag.hpp"

namespace hubgate::mqtt {

namespace {

// Pops the next '/'-separated segment off `rest`; false when none is left.
bool next_segment(std::string_view& rest, std::string_view& seg) noexcept {
    if (rest.empty()) return false;
    const auto slash = rest.find('/');
    seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return true;
}

bool consume(std::string_view& rest, std::string_view literal) noexcept {
    std::string_view seg;
    return next_segment(rest, seg) && seg == literal;
}

}  // namespace

std::optional<D2cTopic> parse_d2c_topic(std::string_view topic) noexcept {
    D2cTopic t;
    std::string_view rest = topic;
    std::string_view seg;
    if (!consume(rest, "devices") || !next_segment(rest, t.device_id) || t.device_id.empty()) return std::nullopt;
    if (!next_segment(rest, seg)) return std::nullopt;
    if (seg == "modules") {
        if (!next_segment(rest, t.module_id) || t.module_id.empty()) return std::nullopt;
        if (!next_segment(rest, seg)) return std::nullopt;
    }
    if (seg != "messages") return std::nullopt;
    // "events" is the last fixed segment; whatever follows it (slashes included) is the bag.
    const auto slash = rest.find('/');
    if (rest.substr(0, slash) != "events") return std::nullopt;
    t.property_bag = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return t;
}

bool is_c2d_filter(std::string_view filter, std::string_view device_id) noexcept {
    constexpr std::string_view prefix = "devices/";
    constexpr std::string_view suffix = "/messages/devicebound/#";
    return filter.size() == prefix.size() + device_id.size() + suffix.size() && filter.substr(0, prefix.size()) == prefix &&
           filter.substr(prefix.size(), device_id.size()) == device_id &&
           filter.substr(prefix.size() + device_id.size()) == suffix;
}

void format_c2d_topic(std::string& out, std::string_view device_id, const HubMessage& m) {
    out.clear();
    out += "devices/";
    out += device_id;
    out += "/messages/devicebound/";
    format_message_bag_to(out, m);
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    if (!topic.empty() && topic.front() == '$' && !filter.empty() && (filter.front() == '+' || filter.front() == '#'))
        return false;
    std::size_t f = 0, t = 0;
    for (;;) {
        const std::size_t fe = std::min(filter.find('/', f), filter.size());
        const std::string_view flevel = filter.substr(f, fe - f);
        if (flevel == "#") return true;  // matches the parent level too ("a/#" matches "a")
        if (t > topic.size()) {
            // The topic ran out of levels: only a trailing "/#" can still match.
            return false;
        }
        const std::size_t te = std::min(topic.find('/', t), topic.size());
        const std::string_view tlevel = topic.substr(t, te - t);
        if (flevel != "+" && flevel != tlevel) return false;
        const bool fend = fe == filter.size(), tend = te == topic.size();
        if (fend && tend) return true;
        if (fend) return false;
        if (tend) {
            // "a/#" against "a": the remaining filter must be exactly "#".
            return filter.substr(fe + 1) == "#";
        }
        f = fe + 1;
        t = te + 1;
    }
}

bool valid_topic_filter(std::string_view filter) noexcept {
    if (filter.empty()) return false;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = std::min(filter.find('/', start), filter.size());
        const std::string_view level = filter.substr(start, end - start);
        if (level.find('#') != std::string_view::npos && (level != "#" || end != filter.size())) return false;
        if (level.find('+') != std::string_view::npos && level != "+") return false;
        if (end == filter.size()) return true;
        start = end + 1;
    }
}

}  // namespace hubgate::mqtt

namespace hubgate::mqtt {

unsigned twin_filter_bit(std::string_view filter) noexcept {
    if (filter == "$iothub/twin/res/#") return kTwinResponses;
    if (filter == "$iothub/twin/PATCH/properties/desired/#") return kTwinDesired;
    if (filter == "$iothub/methods/POST/#") return kMethods;
    return 0;
}

std::optional<TwinRequest> parse_twin_request(std::string_view topic) noexcept {
    constexpr std::string_view prefix = "$iothub/twin/";
    if (!topic.starts_with(prefix)) return std::nullopt;
    std::string_view rest = topic.substr(prefix.size());
    std::string_view query;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    TwinRequest r;
    if (rest == "GET/" || rest == "GET") r.kind = TwinRequest::Kind::get;
    else if (rest == "PATCH/properties/reported/" || rest == "PATCH/properties/reported")
        r.kind = TwinRequest::Kind::patch_reported;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view kv = query.substr(0, amp);
        if (kv.starts_with("$rid=")) r.rid = kv.substr(5);
        else if (kv.starts_with("%24rid=")) r.rid = kv.substr(7);
        if (amp == std::string_view::npos) break;
        query = query.substr(amp + 1);
    }
    return r;
}

}  // namespace hubgate::mqtt
