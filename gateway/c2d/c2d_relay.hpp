// The C2D relay: takes cloud-to-device messages from the upstream connection, persists them in the
// store's inbox before the hub gets its PUBACK, delivers them to devices oldest first (one in flight
// per device) through the adapters' C2dDeliverer, and turns outcomes into IoT Hub feedback records
// that go upstream as stored D2C messages. Runs on the adapters' io_context; wired by gateway/app.
#pragma once

#include <optional>

#include <functional>

#include <memory>
#include <string>

#include "config/config.hpp"

namespace boost::asio {
class io_context;
}

namespace hubgate {
class C2dDeliverer;
struct HubMessage;
class DeviceDirectory;
namespace store {
class Store;
}
namespace upstream {
class UpstreamClient;
}
namespace metrics {
class Registry;
}
}  // namespace hubgate

namespace hubgate::c2d {

class C2dRelay {
public:
    C2dRelay(boost::asio::io_context& io, store::Store& store, upstream::UpstreamClient& upstream,
             C2dDeliverer& deliverer, DeviceDirectory& devices, config::C2d options, metrics::Registry& registry);
    ~C2dRelay();
    C2dRelay(const C2dRelay&) = delete;
    C2dRelay& operator=(const C2dRelay&) = delete;

    // Hooks the upstream message listener (call before the upstream client starts, so messages a
    // broker kept for the gateway are not acknowledged unseen), the deliverer's reachability
    // listener, and starts the expiry and feedback timers.
    void start();
    // Flushes gathered feedback into the store and stops the timers.
    void stop();
    // Asked (on the io thread) before each delivery: a reason rejects the message with Rejected
    // feedback carrying it (a rule's c2d_topic that needs a property the message lacks). Set before start().
    void set_precheck(std::function<std::optional<std::string>(const HubMessage&)> check);

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hubgate::c2d
