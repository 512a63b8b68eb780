// The `text` decoder: one reading as text (Shelly's "21.37", Tasmota's "ON", an LWT's "Online")
// becomes one JSON value, optionally wrapped as {"<field>": value}.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

namespace {

constexpr bool is_ascii_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?  ("+1", ".5", "1.", "0x1F",
// "NaN" and "007" are not JSON numbers, so they stay strings).
bool is_json_number(std::string_view s) noexcept {
    std::size_t i = 0;
    const std::size_t n = s.size();
    if (i < n && s[i] == '-') ++i;
    if (i >= n) return false;
    if (s[i] == '0') {
        ++i;
    } else if (is_digit(s[i])) {
        while (i < n && is_digit(s[i])) ++i;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        ++i;
        if (i >= n || !is_digit(s[i])) return false;
        while (i < n && is_digit(s[i])) ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        if (i >= n || !is_digit(s[i])) return false;
        while (i < n && is_digit(s[i])) ++i;
    }
    return i == n;
}

bool equals_ignoring_case(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != lower[i]) return false;
    }
    return true;
}

}  // namespace

Decoded decode_text(const DecodeInput& in) {
    if (auto bad = invalid_utf8_at(in.bytes))
        return failure(DecodeStatus::bad_payload, "invalid UTF-8 at byte " + std::to_string(*bad));

    std::string_view s = in.bytes;
    while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);

    Decoded d;
    d.source_content_type = "text/plain";
    nlohmann::json value;
    std::string value_text;
    // A number beyond a double's range (1e999) stays text: the json decoder refuses it, and no
    // reader of the hub's JSON could hold it.
    if (is_json_number(s) && check_json(s).ok) {
        value_text.assign(s);  // as written: 12345678901234567890123 keeps every digit
        if (in.want_doc) value = nlohmann::json::parse(s.begin(), s.end(), nullptr, false);
    } else if (equals_ignoring_case(s, "true") || equals_ignoring_case(s, "on")) {
        value = true;
    } else if (equals_ignoring_case(s, "false") || equals_ignoring_case(s, "off")) {
        value = false;
    } else {
        value = std::string(s);
    }
    if (value_text.empty()) value_text = value.dump();

    if (in.field.empty()) {
        d.body = std::move(value_text);
        if (in.want_doc) d.doc = std::move(value);
    } else {
        const std::string key = nlohmann::json(std::string(in.field)).dump();
        d.body.reserve(key.size() + value_text.size() + 3);
        d.body.append("{").append(key).append(":").append(value_text).append("}");
        if (in.want_doc) d.doc = nlohmann::json::object({{std::string(in.field), std::move(value)}});
    }
    d.has_doc = in.want_doc;
    return d;
}

}  // namespace hubgate::translate::detail
