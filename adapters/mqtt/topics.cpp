#include "adapters/mqtt/topics.hpp"

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

}  // namespace hubgate::mqtt
