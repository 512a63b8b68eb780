// The seam through which the C2D relay hands a message to whichever adapter serves the device
// (STYLE.md: deliver(device, message, on_outcome)). Adapters implement it; gateway/app wires it.
#pragma once

#include <functional>
#include <string>

#include "gateway/model/hub_message.hpp"

namespace hubgate {

enum class DeliveryOutcome {
    completed,      // the device acknowledged it (MQTT PUBACK)
    not_delivered,  // sent, but the device went away before acknowledging it
    unreachable,    // not sent: the device is not connected and subscribed right now
    rejected,       // the device refused it (CoAP DELETE ?reject): removed, Rejected feedback
};

class C2dDeliverer {
public:
    virtual ~C2dDeliverer() = default;
    // Thread-safe. Sends `m` to the device if it is connected and subscribed; `done` runs once,
    // on the adapter's thread, with the outcome.
    virtual void deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) = 0;
    // Called on the adapter's thread with (device, true) when a device becomes reachable for C2D
    // (subscribed) and (device, false) when it stops being reachable.
    virtual void set_reachability_listener(std::function<void(const std::string& device, bool reachable)> fn) = 0;
};

}  // namespace hubgate
