#include "gateway/c2d/multi_deliverer.hpp"

#include <utility>

namespace hubgate::c2d {

MultiDeliverer::MultiDeliverer(std::vector<C2dDeliverer*> parts) : parts_(std::move(parts)) {}

void MultiDeliverer::deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) {
    try_from(0, std::move(device_id), std::move(m), std::move(done));
}

void MultiDeliverer::try_from(std::size_t index, std::string device_id, HubMessage m,
                              std::function<void(DeliveryOutcome)> done) {
    if (index >= parts_.size()) return done(DeliveryOutcome::unreachable);
    // The adapter consumes its copy; keep one for the next adapter in case this one cannot reach it.
    HubMessage copy = m;
    parts_[index]->deliver(device_id, std::move(copy),
                           [this, index, device_id, m = std::move(m), done = std::move(done)](DeliveryOutcome o) mutable {
                               if (o != DeliveryOutcome::unreachable) return done(o);
                               try_from(index + 1, std::move(device_id), std::move(m), std::move(done));
                           });
}

void MultiDeliverer::set_reachability_listener(std::function<void(const std::string&, bool)> fn) {
    listener_ = std::move(fn);
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        parts_[i]->set_reachability_listener([this, bit = 1u << i](const std::string& device, bool reachable) {
            auto& mask = reachable_[device];
            const bool before = mask != 0;
            mask = reachable ? (mask | bit) : (mask & ~bit);
            const bool after = mask != 0;
            if (mask == 0) reachable_.erase(device);
            // Repeat "reachable" too: a device that re-subscribes should be pumped again.
            if (listener_ && (after || before)) listener_(device, after);
        });
    }
}

}  // namespace hubgate::c2d
