// IoT Hub property-bag codec for MQTT topics (both directions): `k=v&k2=v2`, URL-encoded,
// `key` (no value) vs `key=` (empty), and `$.mid`/`%24.mid` system-property keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/model/hub_message.hpp"
#include "gateway/model/result.hpp"

namespace hubgate {

struct BagEntry {
    std::string key;                   // decoded
    std::optional<std::string> value;  // decoded; nullopt for a bare `key`
    bool operator==(const BagEntry&) const = default;
};
using PropertyBag = std::vector<BagEntry>;

// Splits on '&' and the first '=' of each entry, then URL-decodes key and value.
// Empty input (and empty entries between '&&') give no entries. Errors: malformed %-escape, empty key.
Result<PropertyBag> parse_property_bag(std::string_view bag);
// Inverse of parse: URL-encodes keys and values, joins with '&'.
std::string format_property_bag(const PropertyBag& bag);

// Short system-property keys as they appear in bags (after decoding): "$.mid" -> member pointer.
// Known: $.mid $.cid $.uid $.ct $.ce $.ctime $.exp $.to. Returns nullptr for other keys.
std::string SystemProperties::*system_property_for_key(std::string_view decoded_key) noexcept;

// Applies a topic's property bag to a message: `$.xxx` keys (raw or %24-encoded) set system
// properties, every other key becomes an application property in order. An unknown `$.` key is an
// error. Does not validate charsets or sizes: validate_message() does that.
Status apply_property_bag(std::string_view bag, HubMessage& m);

// Formats a message's system properties (as `$.mid` etc., '$' encoded as %24) followed by its
// application properties, e.g. for `devices/{id}/messages/devicebound/{bag}`.
std::string format_message_bag(const HubMessage& m);
// Same, appending to a reused buffer.
void format_message_bag_to(std::string& out, const HubMessage& m);

}  // namespace hubgate
