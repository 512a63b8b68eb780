// One interface for every payload decoder of the translation stage (STYLE.md: "one decoder, one
// file"): bytes + CoAP Content-Format -> a normalized body (UTF-8 JSON, or bytes) or a reason.
// Used by gateway/translate's rule engine only; adapters never see it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace hubgate::translate {

enum class Format { json, cbor, senml, text, binary, automatic };

// "json" | "cbor" | "senml" | "text" | "binary" | "auto"
std::optional<Format> parse_format(std::string_view name) noexcept;
const char* to_string(Format f) noexcept;

// CoAP Content-Format numbers the decoders know (RFC 7252 §12.3, RFC 8428 §12.3).
namespace content_format {
inline constexpr std::uint16_t text_plain = 0;
inline constexpr std::uint16_t octet_stream = 42;
inline constexpr std::uint16_t json = 50;
inline constexpr std::uint16_t cbor = 60;
inline constexpr std::uint16_t senml_json = 110;
inline constexpr std::uint16_t sensml_json = 111;
inline constexpr std::uint16_t senml_cbor = 112;
inline constexpr std::uint16_t sensml_cbor = 113;
}  // namespace content_format

struct DecodeInput {
    std::string_view bytes;
    std::optional<std::uint16_t> content_format;  // CoAP's option, when the request had one
    std::int64_t receive_ms = 0;  // the gateway's receive time (SenML: relative or missing times)
    std::string_view field;       // text: wrap the value as {"<field>": value} when not empty
    bool want_doc = false;        // fill Decoded::doc (a rule needs {json:...} or time)
};

enum class DecodeStatus {
    ok,
    bad_payload,         // the bytes are not what the format says
    unsupported_format,  // the Content-Format is one this rule's format cannot decode (CoAP 4.15)
};

struct Decoded {
    DecodeStatus status = DecodeStatus::ok;
    std::string reason;  // short, for the `decode-error` property and logs (status != ok)
    bool is_json = true;  // false: `body` is bytes, content type application/octet-stream
    std::string body;     // UTF-8 JSON text, or the bytes
    // The media type that arrived where the body was converted ("application/cbor",
    // "application/senml+json", "application/senml+cbor", "text/plain"); empty otherwise.
    std::string_view source_content_type;
    bool has_doc = false;  // doc holds the decoded value (only when want_doc and is_json)
    nlohmann::json doc;
};

// Decodes per DESIGN.md "Translation rules" (output section). Never throws.
// - Content-Format: json takes none or 50, cbor none or 60, text none or 0, senml none, 110-113,
//   50 (SenML JSON) or 60 (SenML CBOR), binary anything; any other is unsupported_format. auto:
//   0 text, 42 binary, 50 json, 60 cbor, 110-113 senml, an unknown number binary; without one,
//   json if the bytes are JSON, else binary (a JSON Content-Format that does not parse is
//   bad_payload, not binary).
// - Failures: is_json false, body empty, reason short and free of payload bytes; byte offsets in
//   reasons are 0-based ("invalid JSON at byte 17", "truncated CBOR at byte 40").
// - source_content_type: cbor "application/cbor"; text "text/plain"; senml "application/senml+json"
//   or "application/senml+cbor" ("application/sensml+..." for Content-Format 111/113); empty for
//   json and binary.
Decoded decode(Format format, const DecodeInput& in);

}  // namespace hubgate::translate
