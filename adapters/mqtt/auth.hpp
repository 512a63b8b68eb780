// CONNECT credentials -> device identity, in Azure IoT Hub's device dialect (DESIGN.md): client id
// = device id, username `{host}/{device_id}/?api-version=...` (or a bare id), password = SAS token.
// Used by the MQTT session; pure (no I/O), so it is unit-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hubgate {
class DeviceDirectory;
}

namespace hubgate::pairing {
class Enroller;
}

namespace hubgate::mqtt {

// sas: IoT Hub's SAS tokens; password: username = device id, password = the key text (commodity
// devices such as Tasmota); none: the client names itself.
enum class AuthMode { sas, none, password };

// MQTT 3.1.1 CONNACK return codes that auth can produce.
enum class ConnackCode : std::uint8_t {
    accepted = 0x00,
    identifier_rejected = 0x02,
    bad_username_or_password = 0x04,  // malformed credentials
    not_authorized = 0x05,            // unknown device, bad signature, expired token
};

struct Credentials {
    std::string_view client_id;
    std::optional<std::string_view> username;
    std::optional<std::string_view> password;
};

struct AuthResult {
    ConnackCode code = ConnackCode::not_authorized;
    std::string device_id;
    std::string module_id;           // the device's configured module, if any
    std::int64_t expires_unix = 0;   // SAS expiry; 0 = no expiry (auth = none)
    std::string key;                 // the device key the token (sas) or password was checked against
    std::string reason;              // for the log line and the refusal counter label
    const char* counter_reason = ""; // short label: "unknown_device", "bad_signature", ...
    std::string enrollment;          // set when the device was registered just now through this group
};

// `devices` is consulted for keys; with AuthMode::none the client id is recorded as a known device.
// A device the directory has no key for is tried against `enroller`'s derived keys (pairing); a
// match is registered or recorded as pending by the enroller (`address`: the peer's IP).
AuthResult authenticate(const Credentials& creds, AuthMode mode, DeviceDirectory& devices, std::int64_t now_unix,
                        pairing::Enroller* enroller = nullptr, std::string_view address = {});

// The device id named by a username of the form `{host}/{device_id}/...` or a bare `{device_id}`.
std::string_view device_id_from_username(std::string_view username) noexcept;

}  // namespace hubgate::mqtt
