// decode(): which decoder a rule's format and the request's CoAP Content-Format select, and the
// helpers the decoders share (UTF-8 check, base64url, JSON error positions).
#include "gateway/translate/decoder.hpp"

#include <array>
#include <exception>
#include <new>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate {

std::optional<Format> parse_format(std::string_view name) noexcept {
    if (name == "json") return Format::json;
    if (name == "cbor") return Format::cbor;
    if (name == "senml") return Format::senml;
    if (name == "text") return Format::text;
    if (name == "binary") return Format::binary;
    if (name == "auto") return Format::automatic;
    return std::nullopt;
}

const char* to_string(Format f) noexcept {
    switch (f) {
        case Format::json: return "json";
        case Format::cbor: return "cbor";
        case Format::senml: return "senml";
        case Format::text: return "text";
        case Format::binary: return "binary";
        case Format::automatic: return "auto";
    }
    return "?";
}

namespace {

using detail::SenmlEncoding;

const char* media_type(std::uint16_t cf) noexcept {
    switch (cf) {
        case content_format::text_plain: return "text/plain";
        case content_format::octet_stream: return "application/octet-stream";
        case content_format::json: return "application/json";
        case content_format::cbor: return "application/cbor";
        case content_format::senml_json: return "application/senml+json";
        case content_format::sensml_json: return "application/sensml+json";
        case content_format::senml_cbor: return "application/senml+cbor";
        case content_format::sensml_cbor: return "application/sensml+cbor";
        default: return nullptr;
    }
}

Decoded unsupported(Format format, std::uint16_t cf) {
    std::string reason = "Content-Format " + std::to_string(cf);
    if (const char* type = media_type(cf)) reason.append(" (").append(type).append(")");
    reason.append(" cannot be decoded as ").append(to_string(format));
    return detail::failure(DecodeStatus::unsupported_format, std::move(reason));
}

// A SenML rule reads 110/111 and plain JSON (50) as SenML JSON, 112/113 and plain CBOR (60) as
// SenML CBOR; without a Content-Format the first non-space byte decides (RFC 8428 packs in JSON
// always open with `[`; a CBOR array never starts with that byte).
Decoded decode_senml_cf(const DecodeInput& in, Format format) {
    if (!in.content_format) return detail::decode_senml(in, SenmlEncoding::sniff, false);
    switch (*in.content_format) {
        case content_format::json:
        case content_format::senml_json: return detail::decode_senml(in, SenmlEncoding::json, false);
        case content_format::sensml_json: return detail::decode_senml(in, SenmlEncoding::json, true);
        case content_format::cbor:
        case content_format::senml_cbor: return detail::decode_senml(in, SenmlEncoding::cbor, false);
        case content_format::sensml_cbor: return detail::decode_senml(in, SenmlEncoding::cbor, true);
        default: return unsupported(format, *in.content_format);
    }
}

Decoded decode_auto(const DecodeInput& in) {
    if (in.content_format) {
        switch (*in.content_format) {
            case content_format::text_plain: return detail::decode_text(in);
            case content_format::json: return detail::decode_json(in);
            case content_format::cbor: return detail::decode_cbor(in);
            case content_format::senml_json:
            case content_format::sensml_json:
            case content_format::senml_cbor:
            case content_format::sensml_cbor: return decode_senml_cf(in, Format::automatic);
            default: return detail::decode_binary(in);  // 42 and every format we do not know
        }
    }
    Decoded json = detail::decode_json(in);
    if (json.status == DecodeStatus::ok) return json;
    return detail::decode_binary(in);
}

Decoded dispatch(Format format, const DecodeInput& in) {
    const auto cf = in.content_format;
    switch (format) {
        case Format::json:
            if (cf && *cf != content_format::json) return unsupported(format, *cf);
            return detail::decode_json(in);
        case Format::cbor:
            if (cf && *cf != content_format::cbor) return unsupported(format, *cf);
            return detail::decode_cbor(in);
        case Format::senml: return decode_senml_cf(in, format);
        case Format::text:
            if (cf && *cf != content_format::text_plain) return unsupported(format, *cf);
            return detail::decode_text(in);
        case Format::binary: return detail::decode_binary(in);
        case Format::automatic: return decode_auto(in);
    }
    return unsupported(format, cf.value_or(0));
}

}  // namespace

Decoded decode(Format format, const DecodeInput& in) {
    // The decoders report bad input as a status; what still throws is a library surprise or
    // memory exhaustion, and neither may cost the caller its connection.
    try {
        return dispatch(format, in);
    } catch (const std::bad_alloc&) {
        Decoded d;
        d.status = DecodeStatus::bad_payload;
        d.is_json = false;
        d.reason = "out of memory";  // short enough for the small-string buffer: no allocation
        return d;
    } catch (const std::exception& e) {
        try {
            return detail::failure(DecodeStatus::bad_payload, std::string("decoder error: ") + e.what());
        } catch (...) {
        }
    } catch (...) {
    }
    Decoded d;
    d.status = DecodeStatus::bad_payload;
    return d;
}

namespace detail {

Decoded failure(DecodeStatus status, std::string reason) {
    Decoded d;
    d.status = status;
    d.reason = std::move(reason);
    d.is_json = false;
    return d;
}

std::optional<std::size_t> invalid_utf8_at(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 §4)
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
        } else {
            return i;
        }
        if (i + len > n) return i;
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (std::size_t k = 2; k < len; ++k)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return std::nullopt;
}

namespace {
constexpr char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void append_base64_with(std::string& out, std::string_view bytes, const char* alphabet, bool pad) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    out.reserve(out.size() + (n + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        out.push_back(alphabet[v & 63]);
    }
    if (n - i == 1) {
        const std::uint32_t v = std::uint32_t{p[i]} << 16;
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        if (pad) out.append("==");
    } else if (n - i == 2) {
        const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        if (pad) out.push_back('=');
    }
}
}  // namespace

void append_base64url(std::string& out, std::string_view bytes) {
    append_base64_with(out, bytes, b64url_alphabet, false);
}

void append_base64(std::string& out, std::string_view bytes) {
    append_base64_with(out, bytes, b64_alphabet, true);
}

void append_base16(std::string& out, std::string_view bytes) {
    constexpr char digits[] = "0123456789abcdef";
    out.reserve(out.size() + bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
}

std::optional<std::string> decode_base64url(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::array<signed char, 256> value{};
    value.fill(-1);
    for (int i = 0; i < 64; ++i) value[static_cast<unsigned char>(b64url_alphabet[i])] = static_cast<signed char>(i);
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char ch : text) {
        const int v = value[static_cast<unsigned char>(ch)];
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

}  // namespace detail
}  // namespace hubgate::translate
