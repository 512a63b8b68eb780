// IoT Hub's MQTT topic names on the device side: D2C publish topics, the C2D subscription filter and
// C2D delivery topics. Pure string work, used by the session and unit-tested alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hubgate {
struct HubMessage;
}

namespace hubgate::mqtt {

// `devices/{id}/messages/events/{bag}` or `devices/{id}/modules/{module}/messages/events/{bag}`;
// the trailing slash and bag may be absent. Views into the topic.
struct D2cTopic {
    std::string_view device_id;
    std::string_view module_id;  // empty when the topic names none
    std::string_view property_bag;
};
std::optional<D2cTopic> parse_d2c_topic(std::string_view topic) noexcept;

inline constexpr const char* kD2cTopicPattern =
    "devices/{device_id}/messages/events/{property_bag} or "
    "devices/{device_id}/modules/{module_id}/messages/events/{property_bag}";

// True for `devices/{device_id}/messages/devicebound/#`, the only C2D filter IoT Hub accepts.
bool is_c2d_filter(std::string_view filter, std::string_view device_id) noexcept;

// `devices/{id}/messages/devicebound/{bag}` — the slash after devicebound is always present.
void format_c2d_topic(std::string& out, std::string_view device_id, const HubMessage& m);

// IoT Hub's twin and method filters a device subscribes to (docs/twins.md), as bits of one mask.
enum TwinFilterBit : unsigned {
    kTwinResponses = 1,  // $iothub/twin/res/#
    kTwinDesired = 2,    // $iothub/twin/PATCH/properties/desired/#
    kMethods = 4,        // $iothub/methods/POST/#
};
// The bit of `filter`, or 0 when it is none of the three.
unsigned twin_filter_bit(std::string_view filter) noexcept;

// A device's twin request: `$iothub/twin/GET/?$rid=R` or `$iothub/twin/PATCH/properties/reported/?$rid=R`
// (other query parameters ignored). `rid` is a view into the topic; it may be empty.
struct TwinRequest {
    enum class Kind { get, patch_reported, other } kind = Kind::other;
    std::string_view rid;
};
// nullopt when the topic is not under `$iothub/twin/`; Kind::other for an operation not served.
std::optional<TwinRequest> parse_twin_request(std::string_view topic) noexcept;

// MQTT 3.1.1 §4.7: whether `filter` (with `+` and `#`) matches `topic`. A filter starting with a
// wildcard does not match a topic starting with `$` (§4.7.2).
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;
// §4.7.1: `#` only last and alone in its level, `+` alone in its level, not empty.
bool valid_topic_filter(std::string_view filter) noexcept;

}  // namespace hubgate::mqtt
