// Routes C2D deliveries to whichever adapter has the device reachable (MQTT subscribed, CoAP
// polling devicebound): gateway/app hands it to the C2D relay as its one C2dDeliverer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gateway/pipeline/c2d_delivery.hpp"

namespace hubgate::c2d {

class MultiDeliverer : public C2dDeliverer {
public:
    // Adapters in the order they are tried; they must outlive this object.
    explicit MultiDeliverer(std::vector<C2dDeliverer*> parts);

    // Tries each adapter in turn while they answer unreachable.
    void deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) override;
    // A device is reachable while any adapter says so.
    void set_reachability_listener(std::function<void(const std::string& device, bool reachable)> fn) override;

private:
    void try_from(std::size_t index, std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done);

    std::vector<C2dDeliverer*> parts_;
    std::function<void(const std::string&, bool)> listener_;
    std::map<std::string, unsigned> reachable_;  // device -> bit per adapter (adapters' thread only)
};

}  // namespace hubgate::c2d
