#include "gateway/model/property_bag.hpp"

#include <array>
#include <utility>

#include "gateway/model/url_encoding.hpp"

namespace hubgate {
namespace {

struct SystemKey {
    std::string_view key;          // as decoded from a bag
    std::string_view encoded_key;  // as we emit it: SDKs and the hub send '$' as %24
    std::string SystemProperties::*member;
};

// The order is the one format_message_bag emits (the order IoT Hub lists them in).
constexpr std::array<SystemKey, 8> kSystemKeys{{
    {"$.mid", "%24.mid", &SystemProperties::message_id},
    {"$.cid", "%24.cid", &SystemProperties::correlation_id},
    {"$.uid", "%24.uid", &SystemProperties::user_id},
    {"$.ct", "%24.ct", &SystemProperties::content_type},
    {"$.ce", "%24.ce", &SystemProperties::content_encoding},
    {"$.ctime", "%24.ctime", &SystemProperties::creation_time},
    {"$.exp", "%24.exp", &SystemProperties::absolute_expiry_time},
    {"$.to", "%24.to", &SystemProperties::to},
}};

constexpr bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

// Checks escapes up front so the reason can name the position in the whole bag (what a device owner
// sees in the topic), not the position inside one key or value.
Status check_escapes(std::string_view bag) {
    for (std::size_t i = 0; i < bag.size(); ++i) {
        if (bag[i] != '%') continue;
        if (i + 2 >= bag.size() || !is_hex(bag[i + 1]) || !is_hex(bag[i + 2]))
            return Error{"property bag has a malformed percent-escape at position " + std::to_string(i) +
                         ": '%' must be followed by two hex digits"};
        i += 2;
    }
    return std::nullopt;
}

std::string decode_checked(std::string_view escaped) {
    // check_escapes() already vetted every escape, so decoding cannot fail here.
    auto decoded = url_decode(escaped);
    return decoded ? std::move(decoded).value() : std::string(escaped);
}

// A null value is a bare key: IoT Hub tells `key` (no value) from `key=` (empty value).
void append_entry(std::string& out, std::string_view key, const std::optional<std::string>& value) {
    url_encode_to(out, key);
    if (value) {
        out.push_back('=');
        url_encode_to(out, *value);
    }
}

}  // namespace

Result<PropertyBag> parse_property_bag(std::string_view bag) {
    if (auto bad = check_escapes(bag)) return std::move(*bad);
    PropertyBag entries;
    std::size_t start = 0;
    while (start <= bag.size()) {
        auto end = bag.find('&', start);
        if (end == std::string_view::npos) end = bag.size();
        const auto entry = bag.substr(start, end - start);
        if (!entry.empty()) {
            const auto eq = entry.find('=');
            const auto raw_key = entry.substr(0, eq);
            if (raw_key.empty())
                return Error{"property bag entry at position " + std::to_string(start) + " has an empty name"};
            BagEntry e;
            e.key = decode_checked(raw_key);
            if (eq != std::string_view::npos) e.value = decode_checked(entry.substr(eq + 1));
            entries.push_back(std::move(e));
        }
        start = end + 1;
    }
    return entries;
}

std::string format_property_bag(const PropertyBag& bag) {
    std::string out;
    for (const auto& e : bag) {
        if (!out.empty()) out.push_back('&');
        append_entry(out, e.key, e.value);
    }
    return out;
}

std::string SystemProperties::*system_property_for_key(std::string_view decoded_key) noexcept {
    for (const auto& k : kSystemKeys)
        if (k.key == decoded_key) return k.member;
    return nullptr;
}

Status apply_property_bag(std::string_view bag, HubMessage& m) {
    auto parsed = parse_property_bag(bag);
    if (!parsed) return Error{parsed.error()};
    for (auto& e : *parsed) {
        if (e.key.starts_with("$.")) {
            auto member = system_property_for_key(e.key);
            if (member == nullptr)
                return Error{"unknown system property '" + e.key +
                             "' in property bag; known: $.mid $.cid $.uid $.ct $.ce $.ctime $.exp $.to"};
            if (!e.value)
                return Error{"system property '" + e.key + "' has no value; write it as " + e.key + "=value"};
            m.system.*member = std::move(*e.value);
        } else {
            m.properties.set(std::move(e.key), std::move(e.value));
        }
    }
    return std::nullopt;
}

std::string format_message_bag(const HubMessage& m) {
    std::string out;
    format_message_bag_to(out, m);
    return out;
}

void format_message_bag_to(std::string& out, const HubMessage& m) {
    bool first = true;
    auto separate = [&] {
        if (!first) out.push_back('&');
        first = false;
    };
    for (const auto& k : kSystemKeys) {
        const auto& value = m.system.*k.member;
        if (value.empty()) continue;
        separate();
        out.append(k.encoded_key);
        out.push_back('=');
        url_encode_to(out, value);
    }
    for (const auto& p : m.properties) {
        separate();
        append_entry(out, p.name, p.value);
    }
}

}  // namespace hubgate
