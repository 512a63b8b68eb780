// The door rules from IoT Hub (DESIGN.md "Rules from IoT Hub"): every adapter runs a device's
// message through normalize_message() before it reaches the store.
#pragma once

#include <string_view>

#include "gateway/model/hub_message.hpp"
#include "gateway/model/result.hpp"

namespace hubgate {

class MessageIdGenerator;

// Maps `iothub-creation-time-utc` to the creation-time system property, refuses identity spoofing
// (`device-id`, `module-id`, `iothub-connection-*`), checks every charset and format rule, gives a
// message without a message id a UUID from `ids`, and finally checks the size (which counts the id
// the message will travel with). Returns the first refusal with a reason a device owner can act on.
Status normalize_message(HubMessage& m, MessageIdGenerator& ids);

// IoT Hub's device and module id rule: 1-128 ASCII alphanumerics and - . % _ * ? ! ( ) , : = @ $ '.
// Used by config (device ids, module ids), connection strings and MQTT auth (client ids).
bool is_hub_id(std::string_view id) noexcept;

// Device-controlled text for a reason or a log line: printable ASCII kept, other bytes as \xNN,
// cut after `max_chars` with "...", so one reason stays one readable line.
std::string shown_text(std::string_view text, std::size_t max_chars = 64);
inline constexpr const char* kHubIdRule = "1-128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '";

// The individual rules, exposed for tests and for the C2D path.
Status check_app_property_name(std::string_view name);
Status check_app_property_value(std::string_view name, std::string_view value);
Status check_message_id(std::string_view id);
Status check_iso8601_utc(std::string_view what, std::string_view value);
Status check_size(const HubMessage& m);

}  // namespace hubgate
