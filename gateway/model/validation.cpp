#include "gateway/model/validation.hpp"

#include <cstdio>
#include <string>

#include "gateway/model/message_id.hpp"

namespace hubgate {
namespace {

constexpr std::string_view kCreationTimeProperty = "iothub-creation-time-utc";
constexpr std::string_view kAppNameSymbols = "!#$%&'*+-.^_`|~";
constexpr std::string_view kMessageIdSymbols = "-:.+%_#*?!(),=@;$'";
constexpr std::size_t kMaxMessageIdChars = 128;
constexpr std::size_t kMaxShownChars = 64;

constexpr bool is_alnum(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
constexpr bool is_printable(unsigned char c) noexcept { return c >= 0x20 && c <= 0x7E; }

std::string shown(std::string_view text) { return shown_text(text, kMaxShownChars); }

}  // namespace

std::string shown_text(std::string_view text, std::size_t max_chars) {
    std::string out;
    const auto n = text.size() < max_chars ? text.size() : max_chars;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (is_printable(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
        }
    }
    if (n < text.size()) out += "...";
    return out;
}

namespace {

// Describes one offending byte: "' '" for printable ones, "byte 0xC3 (non-ASCII)" otherwise.
std::string describe_byte(unsigned char c) {
    char buf[40];
    if (c >= 0x80)
        std::snprintf(buf, sizeof buf, "byte 0x%02X (non-ASCII)", c);
    else if (!is_printable(c))
        std::snprintf(buf, sizeof buf, "byte 0x%02X (a control character)", c);
    else
        std::snprintf(buf, sizeof buf, "'%c'", c);
    return buf;
}

bool iequals_prefix(std::string_view text, std::string_view lower_prefix) noexcept {
    if (text.size() < lower_prefix.size()) return false;
    for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != lower_prefix[i]) return false;
    }
    return true;
}
bool iequals(std::string_view text, std::string_view lower) noexcept {
    return text.size() == lower.size() && iequals_prefix(text, lower);
}

// Case-insensitive on purpose: consumers downstream (and HTTP-style tooling) often look these names
// up without regard to case, so "Device-Id" must not slip past as a different property.
Status check_not_spoofing(std::string_view name) {
    if (iequals(name, "device-id") || iequals(name, "module-id"))
        return Error{"application property '" + shown(name) +
                     "' is reserved: the gateway sets the device and module identity itself"};
    if (iequals_prefix(name, "iothub-connection-"))
        return Error{"application property '" + shown(name) +
                     "' is reserved: names starting with 'iothub-connection-' describe the connection "
                     "and are set by the hub"};
    return std::nullopt;
}

// For system properties whose only rule is the seed's "names and values are ASCII".
Status check_ascii(std::string_view what, std::string_view value) {
    for (std::size_t i = 0; i < value.size(); ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c >= 0x80)
            return Error{std::string(what) + " '" + shown(value) + "' contains " + describe_byte(c) +
                         " at position " + std::to_string(i) + "; property values must be ASCII"};
    }
    return std::nullopt;
}

// Position of the first byte outside 0x20-0x7E, or npos.
std::size_t first_unprintable(std::string_view value) noexcept {
    for (std::size_t i = 0; i < value.size(); ++i)
        if (!is_printable(static_cast<unsigned char>(value[i]))) return i;
    return std::string_view::npos;
}

Error unprintable_reason(std::string_view what, std::string_view value, std::size_t at) {
    return Error{std::string(what) + " '" + shown(value) + "' contains " +
                 describe_byte(static_cast<unsigned char>(value[at])) + " at position " + std::to_string(at) +
                 "; allowed: printable ASCII (0x20-0x7E)"};
}

Status check_printable(std::string_view what, std::string_view value) {
    const auto at = first_unprintable(value);
    if (at == std::string_view::npos) return std::nullopt;
    return unprintable_reason(what, value, at);
}

bool parse_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) noexcept {
    if (pos + count > text.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        v = v * 10 + (text[i] - '0');
    }
    out = v;
    return true;
}

constexpr int days_in_month(int year, int month) noexcept {
    constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

}  // namespace

Status check_app_property_name(std::string_view name) {
    if (name.empty()) return Error{"application property name is empty"};
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (is_alnum(c) || kAppNameSymbols.find(static_cast<char>(c)) != std::string_view::npos) continue;
        return Error{"application property name '" + shown(name) + "' contains " + describe_byte(c) +
                     ", allowed: ASCII letters, digits and " + std::string(kAppNameSymbols)};
    }
    return std::nullopt;
}

Status check_app_property_value(std::string_view name, std::string_view value) {
    // The reason is built only on refusal: this runs for every property of every message.
    const auto at = first_unprintable(value);
    if (at == std::string_view::npos) return std::nullopt;
    return unprintable_reason("application property '" + shown(name) + "' value", value, at);
}

Status check_message_id(std::string_view id) {
    if (id.empty()) return Error{"message id is empty"};
    if (id.size() > kMaxMessageIdChars)
        return Error{"message id is " + std::to_string(id.size()) + " characters; the limit is " +
                     std::to_string(kMaxMessageIdChars)};
    for (std::size_t i = 0; i < id.size(); ++i) {
        const auto c = static_cast<unsigned char>(id[i]);
        if (is_alnum(c) || kMessageIdSymbols.find(static_cast<char>(c)) != std::string_view::npos) continue;
        return Error{"message id '" + shown(id) + "' contains " + describe_byte(c) +
                     ", allowed: ASCII letters, digits and " + std::string(kMessageIdSymbols)};
    }
    return std::nullopt;
}

// Accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00): UTC only, because IoT Hub stores and compares
// these as UTC instants and a local offset would silently shift expiry.
Status check_iso8601_utc(std::string_view what, std::string_view value) {
    auto refuse = [&](std::string_view why) -> Status {
        return Error{std::string(what) + " '" + shown(value) + "' is not an ISO-8601 UTC time (" +
                     std::string(why) + "); expected e.g. 2026-11-23T17:00:00Z or 2026-11-23T17:00:00.123Z"};
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!parse_digits(value, 0, 4, year) || value.size() < 5 || value[4] != '-' ||
        !parse_digits(value, 5, 2, month) || value.size() < 8 || value[7] != '-' ||
        !parse_digits(value, 8, 2, day))
        return refuse("the date must be YYYY-MM-DD");
    if (value.size() < 11 || value[10] != 'T') return refuse("a 'T' must separate date and time");
    if (!parse_digits(value, 11, 2, hour) || value.size() < 14 || value[13] != ':' ||
        !parse_digits(value, 14, 2, minute) || value.size() < 17 || value[16] != ':' ||
        !parse_digits(value, 17, 2, second))
        return refuse("the time must be HH:MM:SS");
    if (month < 1 || month > 12) return refuse("month out of range");
    if (day < 1 || day > days_in_month(year, month)) return refuse("day out of range");
    if (hour > 23 || minute > 59 || second > 59) return refuse("time of day out of range");
    std::size_t pos = 19;
    if (pos < value.size() && value[pos] == '.') {
        const auto digits_start = ++pos;
        while (pos < value.size() && value[pos] >= '0' && value[pos] <= '9') ++pos;
        if (pos == digits_start) return refuse("a '.' must be followed by digits");
    }
    const auto zone = value.substr(pos);
    if (zone == "Z" || zone == "+00:00") return std::nullopt;
    if (zone.empty()) return refuse("the time zone is missing; add 'Z'");
    return refuse("the time zone must be 'Z' or '+00:00'");
}

Status check_size(const HubMessage& m) {
    const auto size = hub_size(m);
    if (size <= kMaxHubMessageBytes) return std::nullopt;
    return Error{"message is " + std::to_string(size) +
                 " bytes by IoT Hub's size rule (body + property values + names); the limit is " +
                 std::to_string(kMaxHubMessageBytes)};
}

Status normalize_message(HubMessage& m, MessageIdGenerator& ids) {
    // SDKs send the creation time as an application property; the hub treats it as a system one.
    if (auto ctime = m.properties.erase(kCreationTimeProperty)) {
        if (!*ctime)
            return Error{"application property '" + std::string(kCreationTimeProperty) +
                         "' has no value; give it an ISO-8601 UTC time"};
        // An explicit $.ctime wins: it is the system property itself.
        if (m.system.creation_time.empty()) m.system.creation_time = std::move(**ctime);
    }

    for (const auto& p : m.properties) {
        if (auto bad = check_not_spoofing(p.name)) return bad;
        if (auto bad = check_app_property_name(p.name)) return bad;
        if (p.value)
            if (auto bad = check_app_property_value(p.name, *p.value)) return bad;
    }

    const auto& s = m.system;
    if (!s.message_id.empty())
        if (auto bad = check_message_id(s.message_id)) return bad;
    if (auto bad = check_ascii("correlation id", s.correlation_id)) return bad;
    if (auto bad = check_ascii("user id", s.user_id)) return bad;
    if (auto bad = check_ascii("'to' property", s.to)) return bad;
    if (auto bad = check_printable("content type", s.content_type)) return bad;
    if (auto bad = check_printable("content encoding", s.content_encoding)) return bad;
    if (!s.creation_time.empty())
        if (auto bad = check_iso8601_utc("creation time", s.creation_time)) return bad;
    if (!s.absolute_expiry_time.empty())
        if (auto bad = check_iso8601_utc("expiry time", s.absolute_expiry_time)) return bad;

    if (m.system.message_id.empty()) m.system.message_id = ids.next();

    // Last, so the size counts the message id (possibly just generated) the message travels with.
    return check_size(m);
}

bool is_hub_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id) {
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("-.%_*?!(),:=@$'").find(c) == std::string_view::npos) return false;
    }
    return true;
}

}  // namespace hubgate
