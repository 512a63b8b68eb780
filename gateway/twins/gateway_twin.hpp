// The gateway's own twin at the hub (docs/twins.md): local devices' reported properties go up as
// coalesced patches of `reported.devices.<D>`, kept in the store until the hub acknowledged them;
// on every upstream connect the gateway GETs its twin and gives local devices the desired changes
// they missed. Knows the upstream only as a publish function (the app wires UpstreamClient in).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gateway/twins/gateway_twin_plan.hpp"

namespace hubgate::metrics {
class Registry;
}
namespace hubgate::store {
class Store;
}

namespace hubgate::twins {

class TwinService;

struct UpstreamTwinPort {
    // A QoS 1 publish (UpstreamClient::publish): done(true) on the PUBACK, done(false) when it was
    // lost; returns false at once (done not called) when it cannot be sent now. `data` is false for
    // the GET sent on every connect (UpstreamClient's counts_for_health).
    std::function<bool(const std::string& topic, std::string payload, std::function<void(bool acked)> done, bool data)>
        publish;
    std::string topic_base;           // "devices/{gw}/" (mqtt profile) or "" (azure-iot-hub)
    bool delivered_on_puback = true;  // mqtt profile; azure-iot-hub: on the hub's 204
};

struct GatewayTwinOptions {
    std::chrono::milliseconds get_timeout{10000};    // no answer to the GET: counted, logged once
    std::chrono::milliseconds patch_timeout{30000};  // azure-iot-hub: no 204 within: sent again
    std::chrono::milliseconds retry_after{1000};     // after a publish that failed or could not go
    std::size_t max_reported_bytes = kMaxTwinSideBytes;
};

class GatewayTwin {
public:
    GatewayTwin(TwinService& twins, store::Store& store, UpstreamTwinPort port, GatewayTwinOptions options,
                metrics::Registry& registry);
    ~GatewayTwin();  // stop()
    GatewayTwin(const GatewayTwin&) = delete;
    GatewayTwin& operator=(const GatewayTwin&) = delete;

    void start();  // its own thread
    void stop();

    // A device's reported change was committed (any thread, e.g. the store writer's).
    void reported_changed();
    // The upstream connection came up (a new epoch) or went down (any thread).
    void connection(bool up, std::uint64_t epoch);
    // A desired patch of the gateway's twin (Paho's thread): applied to the local devices before it
    // returns (the PUBACK follows), as TwinService::apply_gateway_desired does.
    void desired_patch(const std::string& body);
    // An answer on `$iothub/twin/res/{status}/?$rid=R` (Paho's thread). The answer to the GET is
    // applied to the local devices before it returns, so a desired patch that arrives after it is
    // applied after it too.
    void response(int status, const std::string& rid, const std::string& body);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;  // shared with the store's callbacks in flight
};

}  // namespace hubgate::twins
