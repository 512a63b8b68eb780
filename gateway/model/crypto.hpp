// Thin wrappers over OpenSSL for what hubgate signs: base64 and HMAC-SHA256. No hand-rolled crypto.
#pragma once

#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate {

std::string base64_encode(std::string_view bytes);
// Appends the encoding to a reused buffer (the upstream batcher's hot path: no allocation beyond growth).
void base64_encode_to(std::string& out, std::string_view bytes);
// Strict standard base64 (with padding); whitespace or bad characters are an error.
Result<std::string> base64_decode(std::string_view text);
// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);
// A new device key: 32 bytes from OpenSSL's CSPRNG, base64 (as IoT Hub generates them). Error if the
// generator is not seeded.
Result<std::string> random_device_key();
// Constant-time comparison for signatures.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace hubgate
