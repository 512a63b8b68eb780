// Percent-encoding as IoT Hub uses it in MQTT topic property bags and SAS tokens.
// Used by property_bag and sas_token.
#pragma once

#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate {

// Encodes every byte except ASCII alphanumerics and `-._~` (RFC 3986 unreserved) as %XX (upper hex).
std::string url_encode(std::string_view in);
// Appends the encoding of `in` to `out` (no allocation beyond out's growth).
void url_encode_to(std::string& out, std::string_view in);
// Decodes %XX escapes ('+' stays '+'). A '%' not followed by two hex digits is an error whose
// reason names the offending position.
Result<std::string> url_decode(std::string_view in);

}  // namespace hubgate
