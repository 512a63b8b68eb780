// The decoders behind translate::decode() (decoder.hpp), one per file, and the small helpers they
// share. Internal to gateway/translate: decoder.cpp dispatches to them; the fuzzers and unit tests
// reach them only through decode().
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/translate/decoder.hpp"

namespace hubgate::translate::detail {

// Deepest nesting of CBOR arrays, maps and tags accepted (hostile input must not exhaust the stack
// of nlohmann's recursive dump() or the memory of a tag chain).
inline constexpr int max_cbor_depth = 64;

Decoded decode_json(const DecodeInput& in);    // json_decoder.cpp
Decoded decode_cbor(const DecodeInput& in);    // cbor_decoder.cpp
Decoded decode_text(const DecodeInput& in);    // text_decoder.cpp
Decoded decode_binary(const DecodeInput& in);  // binary_decoder.cpp

enum class SenmlEncoding { sniff, json, cbor };
// `sensml`: the Content-Format said SenSML (111/113); only source_content_type differs.
Decoded decode_senml(const DecodeInput& in, SenmlEncoding encoding, bool sensml);  // senml_decoder.cpp

// --- shared helpers (decoder.cpp unless said) ---

// One CBOR data item filling all of `bytes`, as JSON per RFC 8949 §6.1. `senml`: integer keys of
// the maps inside the top-level array are RFC 8428 Table 4's labels (an unknown one is dropped),
// `vd` must be a byte string and the text labels text, decimal fractions become numbers.
// On failure `error` is a short reason with the byte offset. (cbor_decoder.cpp)
bool cbor_to_json(std::string_view bytes, bool senml, nlohmann::json& out, std::string& error);

Decoded failure(DecodeStatus status, std::string reason);

// Offset of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), or nullopt when all of `s` is well-formed.
std::optional<std::size_t> invalid_utf8_at(std::string_view s) noexcept;

// RFC 4648 §5 base64url, without padding (RFC 8949 §6.1, RFC 8428 §6 for `vd`).
void append_base64url(std::string& out, std::string_view bytes);
// RFC 4648 §4 base64 with padding, and §8 base16 (lower case): RFC 8949's tags 22 and 23.
void append_base64(std::string& out, std::string_view bytes);
void append_base16(std::string& out, std::string_view bytes);
// Decodes base64url with or without padding; nullopt on any other character (SenML `vd`).
std::optional<std::string> decode_base64url(std::string_view text);

// Whether `text` is exactly one JSON text (RFC 8259, UTF-8, no BOM), by one scan without building
// anything; it accepts what nlohmann::json::accept accepts (fuzz_json). Else where and how it
// broke: offset is 0-based, as in a hex dump; the end of the input when truncated. (json_decoder.cpp)
struct JsonCheck {
    enum class Kind { syntax, utf8, truncated, trailing, empty, range };
    bool ok = false;
    std::size_t offset = 0;
    Kind kind = Kind::syntax;
};
JsonCheck check_json(std::string_view text);

// check_json's verdict on `bytes` as a short reason ("invalid JSON at byte 17"), offsets shifted
// by `offset_base` (a dropped BOM). (json_decoder.cpp)
std::string json_error_reason(std::string_view bytes, std::size_t offset_base);

}  // namespace hubgate::translate::detail
