// The device-facing CoAP server (libcoap 3, plain UDP and DTLS-PSK) driven from the gateway's Asio
// loop: `POST /devices/{id}/messages/events` -> IngestSink, 2.04 only once durable; and C2D
// (`GET`/`DELETE` on `devices/{id}/messages/devicebound`) as a C2dDeliverer for the C2D relay;
// device twins (`devices/{id}/twin...`) through TwinSink.
// gateway/app creates one; libcoap and Asio stay out of this header.
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

namespace hubgate::coap {

struct ServerOptions {
    std::vector<config::Listener> listeners;  // only coap / coaps ones are used
    // Max-Age (seconds) sent with 5.03 when the store has no room: when the device should retry.
    std::uint32_t no_room_max_age = 5;
    // c2d.lock_timeout_seconds: how long a served C2D message stays locked, and how long a device
    // stays reachable for C2D after its last GET of devicebound.
    std::uint32_t lock_timeout_seconds = 60;
    // A Block1 upload with no block for this long is dropped and its bytes freed.
    std::chrono::milliseconds upload_idle{60000};
    // Translation rules for POST/PUT paths outside the IoT Hub paths (null: those are 4.04). Owned
    // by gateway/app; used on the io thread.
    translate::Translator* translator = nullptr;
    // Pairing (docs/pairing.md): an unknown DTLS-PSK identity is offered the key an enrollment group
    // derives for it; a session that completes the handshake with it is registered (window open,
    // register = "always") or refused and pending. Null: unknown identities are refused. gateway/app.
    pairing::Pairing* pairing = nullptr;
    // Device twins (docs/coap.md, "Device twins"): GET devices/{id}/twin, PATCH or POST
    // .../twin/reported, GET (Observe) .../twin/desired. Null: those paths are 4.04. gateway/app.
    TwinSink* twins = nullptr;
};

class CoapServer : public C2dDeliverer {
public:
    CoapServer(boost::asio::io_context& io, ServerOptions options, DeviceDirectory& devices, IngestSink& ingest,
               metrics::Registry& registry);
    ~CoapServer();
    CoapServer(const CoapServer&) = delete;
    CoapServer& operator=(const CoapServer&) = delete;

    // Creates the libcoap context and binds every coap/coaps listener (a port of 0 picks a free
    // one). The first failure is returned. Call on the io_context's thread or before it runs.
    Status start();
    // Closes every endpoint; commits in flight finish but their answers are dropped.
    void stop();
    // Actual ports of the coap/coaps listeners, in listener order.
    std::vector<std::uint16_t> ports() const;

    // C2dDeliverer: the message becomes the device's locked message (served on GET, notified to
    // observers); DELETE completes (or rejects with ?reject), abandon or lock expiry is
    // not_delivered. Unreachable unless the device GETs devicebound within lock_timeout.
    void deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) override;
    void set_reachability_listener(std::function<void(const std::string& device, bool reachable)> fn) override;

    // A committed desired change of `device`: its whole desired document with `$version`. Observers
    // of the device's devices/{id}/twin/desired are notified. Any thread.
    void twin_desired(std::string device_id, std::string document, std::int64_t version);

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hubgate::coap
