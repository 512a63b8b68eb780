// The IoT-hub message model every stage shares: adapters build it, the store persists it,
// the batcher serializes it upstream. Valid-by-construction once validate_message() accepts it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubgate {

// Azure IoT Hub system properties. Empty string = not set. Times are ISO-8601 UTC text, kept as
// text because that is what travels in property bags and what the size rule counts.
struct SystemProperties {
    std::string message_id;            // $.mid
    std::string correlation_id;        // $.cid
    std::string user_id;               // $.uid
    std::string content_type;          // $.ct
    std::string content_encoding;      // $.ce
    std::string creation_time;         // $.ctime (also from app property iothub-creation-time-utc)
    std::string absolute_expiry_time;  // $.exp
    std::string to;                    // $.to (C2D only)

    bool operator==(const SystemProperties&) const = default;
};

// One application property. IoT Hub property bags distinguish `key` (no value) from `key=`
// (empty value), so the value is optional.
struct AppProperty {
    std::string name;
    std::optional<std::string> value;

    bool operator==(const AppProperty&) const = default;
};

// Application properties in arrival order (IoT Hub keeps the order devices send).
class AppProperties {
public:
    using container = std::vector<AppProperty>;
    using const_iterator = container::const_iterator;

    const_iterator begin() const noexcept { return items_.begin(); }
    const_iterator end() const noexcept { return items_.end(); }
    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }

    // Appends, or replaces the value of an existing name (names are case-sensitive).
    void set(std::string name, std::optional<std::string> value);
    const AppProperty* find(std::string_view name) const noexcept;
    // Removes the property; returns its value if it was present.
    std::optional<std::optional<std::string>> erase(std::string_view name);
    void clear() noexcept { items_.clear(); }
    void reserve(std::size_t n) { items_.reserve(n); }

    bool operator==(const AppProperties&) const = default;

private:
    container items_;
};

struct HubMessage {
    std::string body;  // opaque bytes
    SystemProperties system;
    AppProperties properties;
    std::string device_id;
    std::string module_id;        // empty = no module
    std::int64_t enqueued_ms = 0;  // Unix epoch milliseconds, set when the gateway accepts it

    bool operator==(const HubMessage&) const = default;
};

// IoT Hub's size rule: body bytes + system property values + application property names and values.
std::size_t hub_size(const HubMessage& m) noexcept;

inline constexpr std::size_t kMaxHubMessageBytes = 262144;  // 256 KB

}  // namespace hubgate
