// Types of the store's C2D inbox (per-device queues of cloud-to-device messages) used by the C2D
// relay; the operations are Store::inbox_* and Store::device_seen / known_devices (store.hpp).
// See docs/store.md, "C2D inbox".
#pragma once

#include <cstdint>

#include "gateway/model/hub_message.hpp"

namespace hubgate::store {

// IoT Hub's iothub-ack: which outcomes produce a feedback record.
enum class AckMode : std::uint8_t { none = 0, positive = 1, negative = 2, full = 3 };

struct C2dMessage {
    std::int64_t seq = 0;            // assigned by the store; never reused
    HubMessage message;              // device_id = target device; system props (message_id, ...).
                                     // module_id is not stored: C2D targets devices.
    std::int64_t expires_ms = 0;     // absolute, Unix ms
    std::uint32_t delivery_count = 0;
    AckMode ack = AckMode::none;

    bool operator==(const C2dMessage&) const = default;
};

enum class InboxPut {
    queued,      // durable
    duplicate,   // (device_id, message_id) already queued: the hub resent it; nothing changed
    queue_full,  // the device already has queue_depth messages; nothing changed
    failed,      // the transaction rolled back (disk full, SQLite error) or the store is closed
};

const char* to_string(InboxPut result) noexcept;

// The route of a device's last message accepted through a translation rule (for C2D).
struct StoredRoute {
    std::string device_id;
    std::string rule;
    std::string captures;  // URL-encoded `name=value&...`, in pattern order
    std::string via;       // the bridge whose connection carried it; empty = the device's own

    bool operator==(const StoredRoute&) const = default;
};

}  // namespace hubgate::store
