// The `json` decoder: a valid JSON text (RFC 8259, any top-level value) is kept byte for byte, a
// leading UTF-8 BOM dropped. The hot path of translation: without want_doc it validates in one SAX
// pass (no DOM) and copies the bytes once.
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// Records where nlohmann's parser gave up and why, for a reason without the payload's bytes in it
// (nlohmann's own message quotes them, and they may be anything).
struct ErrorLocator : nlohmann::json_sax<nlohmann::json> {
    std::size_t byte = 0;  // 1-based, as nlohmann counts (the end of input counts as one byte)
    bool trailing = false;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
        byte = position;
        trailing = std::string_view(ex.what()).find("expected end of input") != std::string_view::npos;
        return false;
    }
};

}  // namespace

std::string json_error_reason(std::string_view bytes, std::size_t offset_base) {
    ErrorLocator locator;
    const bool ok = nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &locator,
                                              nlohmann::json::input_format_t::json, true, false);
    if (ok) return "invalid JSON";  // not reached: callers pass bytes that did not parse
    std::size_t at = locator.byte > 0 ? locator.byte - 1 : 0;
    // nlohmann stops at a bad UTF-8 sequence somewhere inside a string; name its first byte.
    if (auto bad = invalid_utf8_at(bytes); bad && *bad <= at)
        return "invalid UTF-8 at byte " + std::to_string(*bad + offset_base);
    if (at >= bytes.size()) {
        bool blank = true;
        for (const char c : bytes) blank = blank && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
        if (blank) return "empty JSON payload";
        return "truncated JSON at byte " + std::to_string(bytes.size() + offset_base);
    }
    if (locator.trailing) return "trailing bytes after JSON at byte " + std::to_string(at + offset_base);
    return "invalid JSON at byte " + std::to_string(at + offset_base);
}

Decoded decode_json(const DecodeInput& in) {
    std::string_view text = in.bytes;
    std::size_t skipped = 0;
    if (text.substr(0, utf8_bom.size()) == utf8_bom) {
        text.remove_prefix(utf8_bom.size());
        skipped = utf8_bom.size();
    }
    // nlohmann's lexer checks UTF-8 inside strings (RFC 3629 ranges), and any byte >= 0x80 outside
    // a string is a syntax error, so a text it accepts is valid UTF-8 as well.
    Decoded d;
    if (in.want_doc) {
        d.doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
        if (d.doc.is_discarded()) return failure(DecodeStatus::bad_payload, json_error_reason(text, skipped));
        d.has_doc = true;
    } else if (!nlohmann::json::accept(text.begin(), text.end())) {
        return failure(DecodeStatus::bad_payload, json_error_reason(text, skipped));
    }
    d.body.assign(text.data(), text.size());
    return d;
}

}  // namespace hubgate::translate::detail
