// The device-facing MQTT 3.1.1 server (Azure IoT Hub's device dialect) on Boost.Asio: listeners,
// sessions, auth, D2C ingest with PUBACK after the durable commit, and C2D delivery.
// gateway/app creates one; Asio stays out of this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/model/result.hpp"
#include "gateway/pipeline/c2d_delivery.hpp"

namespace boost::asio {
class io_context;
}

namespace hubgate {
class DeviceDirectory;
class IngestSink;
class TwinSink;
namespace metrics {
class Registry;
}
}  // namespace hubgate

namespace hubgate::translate {
class Translator;
}

namespace hubgate::pairing {
class Pairing;
}

namespace hubgate::mqtt {

struct ServerOptions {
    std::vector<config::Listener> listeners;  // only mqtt / mqtts ones are used
    // IoT Hub accepts up to 256 KB of message; the topic (property bag) can add up to 64 KB more.
    std::uint32_t max_remaining_length = 262144 + 65536 + 64;
    // Store commits a session may have in flight before it stops reading (backpressure window).
    std::size_t max_inflight_batches = 8;
    // Output a session may have queued for a slow reader before it stops reading more input.
    std::size_t max_pending_output = 1 << 20;
    // Retry period while the store has no room (reject-new, disk full).
    std::chrono::milliseconds no_room_retry{500};
    // Clock for token expiry checks (Unix seconds); tests may inject one.
    std::function<std::int64_t()> now_unix;
    // Translation rules for topics outside the IoT Hub dialect (null: every such topic is refused,
    // as IoT Hub does). Owned by gateway/app; used on the io thread.
    translate::Translator* translator = nullptr;
    // Pairing (docs/pairing.md): keys derived from enrollment groups for unknown devices, and the
    // slow-down of repeated refusals from one address. Null: neither. Owned by gateway/app.
    pairing::Pairing* pairing = nullptr;
    // Device twins (docs/twins.md). Null: the `$iothub/twin` and `$iothub/methods` filters are refused
    // as before. Owned by gateway/app.
    TwinSink* twins = nullptr;
};

class MqttServer final : public C2dDeliverer {
public:
    MqttServer(boost::asio::io_context& io, ServerOptions options, DeviceDirectory& devices, IngestSink& ingest,
               metrics::Registry& registry);
    ~MqttServer() override;
    MqttServer(const MqttServer&) = delete;
    MqttServer& operator=(const MqttServer&) = delete;

    // Binds every mqtt/mqtts listener (TLS contexts loaded here). The first failure is returned.
    Status start();
    // Stops accepting and closes every session (their in-flight commits still finish).
    void stop();
    // After the device directory was reloaded: closes the SAS sessions of devices that were removed
    // or whose key or module changed (they connect again with new credentials, or are refused).
    void recheck_devices();
    // Actual ports, in listener order (useful with port 0).
    std::vector<std::uint16_t> ports() const;
    std::size_t session_count() const;

    void deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) override;
    void set_reachability_listener(std::function<void(const std::string&, bool)> fn) override;
    // Any thread: a desired-property change for `device_id` (body with `$version`), sent to its
    // connection if it is connected here and subscribed to desired patches; otherwise it reads the
    // change with its next GET.
    void twin_desired(std::string device_id, std::string body, std::int64_t version);
    // Any thread: invokes direct method `name` on the device's connection
    // (`$iothub/methods/POST/{name}/?$rid=R`, QoS 0). done(status, payload) runs on the io thread
    // exactly once: the device's answer, 404 when it is not connected here or holds no
    // `$iothub/methods/POST/#`, 504 when it does not answer within `timeout`.
    void invoke_method(std::string device_id, std::string name, std::string payload, std::chrono::milliseconds timeout,
                       std::function<void(int status, std::string payload)> done);

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace hubgate::mqtt
