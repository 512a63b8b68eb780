// Device twins on top of the store (docs/twins.md): answers adapters' GETs and reported patches
// (TwinSink), applies desired changes from upstream (the gateway's own twin, `desired.devices.<D>`)
// and tells the adapters about them so subscribed devices get the patch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/pipeline/twins.hpp"

namespace hubgate::store {
class Store;
}
namespace hubgate::metrics {
class Counter;
class Registry;
}

namespace hubgate::twins {

class TwinService final : public TwinSink {
public:
    // With a registry: hubgate_twin_requests_total{op="get"|"reported"} (docs/twins.md).
    explicit TwinService(store::Store& store, metrics::Registry* registry = nullptr);

    void get_twin(const std::string& device_id, std::function<void(TwinAnswer)> done) override;
    void update_reported(const std::string& device_id, std::string patch, std::function<void(TwinAnswer)> done) override;
    void get_desired(const std::string& device_id, std::function<void(TwinAnswer)> done) override;

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

    // The same changes as whole desired documents with `$version` (what an Observe of CoAP's
    // .../twin/desired is sent). Called on the store's writer thread too.
    void set_desired_document_listener(
        std::function<void(const std::string& device, std::string document, std::int64_t version)> fn) {
        on_desired_document_ = std::move(fn);
    }

    // After a device's reported change is committed (store writer thread): the gateway's own twin
    // sends it upstream (GatewayTwin).
    void set_reported_listener(std::function<void(const std::string& device)> fn) { on_reported_ = std::move(fn); }

    // Makes each device's desired properties what the hub's twin says (GET on connect,
    // desired_sync.cpp): `changes` are (device, desired patch) from desired_changes(); each is
    // applied and notified as a desired patch would be. Blocks until every one is committed, like
    // apply_gateway_desired. Returns how many devices changed.
    std::size_t apply_desired_changes(const std::vector<std::pair<std::string, std::string>>& changes);

private:
    void update_desired(const std::string& device_id, std::string patch, std::function<void()> finished);

    struct Counters {
        metrics::Counter* get_ok = nullptr;
        metrics::Counter* get_failed = nullptr;
        metrics::Counter* reported_ok = nullptr;
        metrics::Counter* reported_refused = nullptr;
        metrics::Counter* reported_failed = nullptr;
    } counters_;
    std::function<void(const std::string&)> on_reported_;

    store::Store& store_;
    std::function<void(const std::string&, std::string, std::int64_t)> on_desired_;
    std::function<void(const std::string&, std::string, std::int64_t)> on_desired_document_;
};

}  // namespace hubgate::twins
