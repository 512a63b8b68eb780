// Device twins on top of the store (docs/twins.md): answers adapters' GETs and reported patches
// (TwinSink), applies desired changes from upstream (the gateway's own twin, `desired.devices.<D>`)
// and tells the adapters about them so subscribed devices get the patch.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "gateway/pipeline/twins.hpp"

namespace hubgate::store {
class Store;
}

namespace hubgate::twins {

class TwinService final : public TwinSink {
public:
    explicit TwinService(store::Store& store) : store_(store) {}

    void get_twin(const std::string& device_id, std::function<void(TwinAnswer)> done) override;
    void update_reported(const std::string& device_id, std::string patch, std::function<void(TwinAnswer)> done) override;

    // Merges `patch` into the device's desired properties; after the commit the listener gets the
    // device, the notification body (the patch with `$version`) and the new desired version.
    void update_desired(const std::string& device_id, std::string patch);
    // A desired patch of the gateway's own twin (upstream): each `devices.<encoded id>` member is
    // a desired patch for that local device (null: clear its desired properties). Other members
    // are not the devices' and are ignored. Returns how many devices it named, once every change is
    // committed (it blocks: call it where waiting for the store is fine, as Paho's thread is).
    std::size_t apply_gateway_desired(std::string_view body);

    // Called on the store's writer thread: post to your own.
    void set_desired_listener(std::function<void(const std::string& device, std::string body, std::int64_t version)> fn) {
        on_desired_ = std::move(fn);
    }

private:
    void update_desired(const std::string& device_id, std::string patch, std::function<void()> finished);

    store::Store& store_;
    std::function<void(const std::string&, std::string, std::int64_t)> on_desired_;
};

}  // namespace hubgate::twins
