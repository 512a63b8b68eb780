// IoT Hub shared access signatures: `SharedAccessSignature sr=...&sig=...&se=...[&skn=...]`.
// Devices present them as MQTT passwords; the upstream client makes them for the hub.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate {

struct SasToken {
    std::string sr_raw;   // resource URI exactly as sent (still URL-encoded): what is signed
    std::string sr;       // decoded resource URI, e.g. "host/devices/dev"
    std::string sig_raw;  // signature as sent (URL-encoded base64)
    std::int64_t se = 0;  // expiry, Unix seconds
    std::string skn;      // optional key name (decoded)
};

// resource_uri is the plain URI ("host/devices/dev"); it is URL-encoded into sr, and the signature is
// HMAC-SHA256(base64decode(key), sr_encoded + "\n" + expiry), base64 then URL-encoded.
Result<std::string> make_sas_token(std::string_view resource_uri, std::string_view key_base64,
                                   std::int64_t expiry_unix, std::string_view key_name = {});

// Parses the token text (fields in any order; sr, sig and se required). Errors name what is wrong.
Result<SasToken> parse_sas_token(std::string_view token);

enum class SasCheck { ok, bad_signature, expired };
// Checks the signature over sr_raw exactly as sent and that se > now.
SasCheck verify_sas_token(const SasToken& token, std::string_view key_base64, std::int64_t now_unix);

// base64(HMAC-SHA256(base64decode(group_key), device_id)): DPS-style group enrollment keys.
Result<std::string> derive_device_key(std::string_view group_key_base64, std::string_view device_id);

}  // namespace hubgate
