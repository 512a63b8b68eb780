// The `json` decoder: a valid JSON text (RFC 8259, any top-level value) is kept byte for byte, a
// leading UTF-8 BOM dropped. The hot path of translation: without want_doc it is one validating
// pass over the bytes (no DOM, no allocation but a small nesting stack) and one copy.
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

using Kind = JsonCheck::Kind;

constexpr bool is_ws(unsigned char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(unsigned char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The validating scanner. What it accepts nlohmann::json::accept accepts (tests/fuzz's fuzz_json
// checks that), so a text it passes always parses when a rule wants the document: UTF-8 per
// RFC 3629 in strings, no control characters in them, \u escapes with surrogates in pairs. One
// difference, on purpose: nlohmann takes a NUL byte outside a string for the end of the input
// and so accepts "7\0junk"; here that is trailing bytes, as the DESIGN asks.
class Scanner {
public:
    explicit Scanner(std::string_view text)
        : begin_(reinterpret_cast<const unsigned char*>(text.data())), p_(begin_), end_(begin_ + text.size()) {}

    JsonCheck run() {
        skip_ws();
        if (p_ == end_) return {false, 0, Kind::empty};
        stack_.reserve(16);
    value:
        switch (*p_) {
            case '{':
                ++p_;
                skip_ws();
                if (p_ == end_) return truncated();
                if (*p_ == '}') {
                    ++p_;
                    goto after_value;
                }
                stack_.push_back('{');
                goto key;
            case '[':
                ++p_;
                skip_ws();
                if (p_ == end_) return truncated();
                if (*p_ == ']') {
                    ++p_;
                    goto after_value;
                }
                stack_.push_back('[');
                goto value;
            case '"':
                ++p_;
                if (!string()) return result_;
                goto after_value;
            case 't':
                if (!literal("true")) return result_;
                goto after_value;
            case 'f':
                if (!literal("false")) return result_;
                goto after_value;
            case 'n':
                if (!literal("null")) return result_;
                goto after_value;
            default:
                if (*p_ == '-' || is_digit(*p_)) {
                    if (!number()) return result_;
                    goto after_value;
                }
                return error(Kind::syntax);
        }
    key:  // at a non-space byte after `{` or `,`
        if (*p_ != '"') return error(Kind::syntax);
        ++p_;
        if (!string()) return result_;
        skip_ws();
        if (p_ == end_) return truncated();
        if (*p_ != ':') return error(Kind::syntax);
        ++p_;
        skip_ws();
        if (p_ == end_) return truncated();
        goto value;
    after_value:
        skip_ws();
        if (stack_.empty()) {
            if (p_ == end_) return {true, 0, Kind::syntax};
            return error(Kind::trailing);
        }
        if (p_ == end_) return truncated();
        if (*p_ == ',') {
            ++p_;
            skip_ws();
            if (p_ == end_) return truncated();
            if (stack_.back() == '{') goto key;
            goto value;
        }
        if ((*p_ == '}' && stack_.back() == '{') || (*p_ == ']' && stack_.back() == '[')) {
            ++p_;
            stack_.pop_back();
            goto after_value;
        }
        return error(Kind::syntax);
    }

private:
    void skip_ws() noexcept {
        while (p_ != end_ && is_ws(*p_)) ++p_;
    }

    JsonCheck error(Kind kind) noexcept {
        result_ = {false, static_cast<std::size_t>(p_ - begin_), kind};
        return result_;
    }
    JsonCheck truncated() noexcept {
        p_ = end_;
        return error(Kind::truncated);
    }
    bool fail(Kind kind) noexcept {
        error(kind);
        return false;
    }

    bool literal(std::string_view word) noexcept {
        for (const char c : word) {
            if (p_ == end_) return fail(Kind::truncated);
            if (*p_ != static_cast<unsigned char>(c)) return fail(Kind::syntax);
            ++p_;
        }
        return true;
    }

    // RFC 8259 §6, after the first byte ('-' or a digit). A number beyond a double's range is
    // refused, as nlohmann does (its 406 "number overflow"): no reader of the hub's JSON could
    // hold it either.
    bool number() noexcept {
        const unsigned char* start = p_;
        bool exponent = false;
        if (*p_ == '-') {
            ++p_;
            if (p_ == end_) return fail(Kind::truncated);
        }
        if (*p_ == '0') {
            ++p_;
        } else if (is_digit(*p_)) {
            while (p_ != end_ && is_digit(*p_)) ++p_;
        } else {
            return fail(Kind::syntax);
        }
        if (p_ != end_ && *p_ == '.') {
            ++p_;
            if (p_ == end_) return fail(Kind::truncated);
            if (!is_digit(*p_)) return fail(Kind::syntax);
            while (p_ != end_ && is_digit(*p_)) ++p_;
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            exponent = true;
            ++p_;
            if (p_ == end_) return fail(Kind::truncated);
            if (*p_ == '+' || *p_ == '-') ++p_;
            if (p_ == end_) return fail(Kind::truncated);
            if (!is_digit(*p_)) return fail(Kind::syntax);
            while (p_ != end_ && is_digit(*p_)) ++p_;
        }
        // Only an exponent or some 309 digits can leave a double's range; then ask strtod.
        if (exponent || p_ - start > 300) {
            const std::string token(start, p_);
            if (std::isinf(std::strtod(token.c_str(), nullptr))) {
                p_ = start;
                return fail(Kind::range);
            }
        }
        return true;
    }

    // Four hex digits after "\u"; -1 if they are not there (p_ is left at the culprit).
    long hex4() noexcept {
        long v = 0;
        for (int i = 0; i < 4; ++i) {
            if (p_ == end_) {
                fail(Kind::truncated);
                return -1;
            }
            const int h = hex_value(*p_);
            if (h < 0) {
                fail(Kind::syntax);
                return -1;
            }
            v = v * 16 + h;
            ++p_;
        }
        return v;
    }

    // After the opening quote; on success p_ is past the closing one.
    bool string() noexcept {
        while (p_ != end_) {
            const unsigned char c = *p_;
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                ++p_;
                continue;
            }
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c == '\\') {
                ++p_;
                if (p_ == end_) return fail(Kind::truncated);
                switch (*p_) {
                    case '"':
                    case '\\':
                    case '/':
                    case 'b':
                    case 'f':
                    case 'n':
                    case 'r':
                    case 't': ++p_; continue;
                    case 'u': {
                        ++p_;
                        const long cp = hex4();
                        if (cp < 0) return false;
                        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(Kind::syntax);  // a lone low surrogate
                        if (cp >= 0xD800 && cp <= 0xDBFF) {  // must be followed by \u + a low surrogate
                            if (p_ == end_) return fail(Kind::truncated);
                            if (*p_ != '\\') return fail(Kind::syntax);
                            ++p_;
                            if (p_ == end_) return fail(Kind::truncated);
                            if (*p_ != 'u') return fail(Kind::syntax);
                            ++p_;
                            const long low = hex4();
                            if (low < 0) return false;
                            if (low < 0xDC00 || low > 0xDFFF) return fail(Kind::syntax);
                        }
                        continue;
                    }
                    default: return fail(Kind::syntax);
                }
            }
            if (c < 0x20) return fail(Kind::syntax);
            // A multi-byte UTF-8 sequence (RFC 3629 §4).
            std::size_t len = 0;
            unsigned char lo = 0x80, hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
            } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0) lo = 0xA0;
                if (c == 0xED) hi = 0x9F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0) lo = 0x90;
                if (c == 0xF4) hi = 0x8F;
            } else {
                return fail(Kind::utf8);
            }
            if (static_cast<std::size_t>(end_ - p_) < len || p_[1] < lo || p_[1] > hi) return fail(Kind::utf8);
            for (std::size_t k = 2; k < len; ++k)
                if ((p_[k] & 0xC0) != 0x80) return fail(Kind::utf8);
            p_ += len;
        }
        return fail(Kind::truncated);
    }

    const unsigned char* begin_;
    const unsigned char* p_;
    const unsigned char* end_;
    std::vector<char> stack_;  // '{' or '[' per open container
    JsonCheck result_{};
};

}  // namespace

JsonCheck check_json(std::string_view text) {
    return Scanner(text).run();
}

std::string json_error_reason(std::string_view bytes, std::size_t offset_base) {
    const JsonCheck c = check_json(bytes);
    const std::string at = std::to_string(c.offset + offset_base);
    switch (c.kind) {
        case Kind::empty: return "empty JSON payload";
        case Kind::truncated: return "truncated JSON at byte " + at;
        case Kind::trailing: return "trailing bytes after JSON at byte " + at;
        case Kind::utf8: return "invalid UTF-8 at byte " + at;
        case Kind::range: return "number out of range at byte " + at;
        case Kind::syntax: break;
    }
    return c.ok ? std::string("invalid JSON") : "invalid JSON at byte " + at;
}

Decoded decode_json(const DecodeInput& in) {
    std::string_view text = in.bytes;
    std::size_t skipped = 0;
    if (text.substr(0, utf8_bom.size()) == utf8_bom) {
        text.remove_prefix(utf8_bom.size());
        skipped = utf8_bom.size();
    }
    if (!check_json(text).ok) return failure(DecodeStatus::bad_payload, json_error_reason(text, skipped));
    Decoded d;
    if (in.want_doc) {
        d.doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
        if (d.doc.is_discarded()) return failure(DecodeStatus::bad_payload, "invalid JSON");
        d.has_doc = true;
    }
    d.body.assign(text.data(), text.size());
    return d;
}

}  // namespace hubgate::translate::detail
