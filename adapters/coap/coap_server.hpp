// The device-facing CoAP server (libcoap 3, plain UDP and DTLS-PSK) driven from the gateway's Asio
// loop: `POST /devices/{id}/messages/events` -> IngestSink, 2.04 only once durable.
// gateway/app creates one; libcoap and Asio stay out of this header.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "gateway/model/result.hpp"

namespace boost::asio {
class io_context;
}

namespace hubgate {
class DeviceDirectory;
class IngestSink;
namespace metrics {
class Registry;
}
}  // namespace hubgate

namespace hubgate::coap {

struct ServerOptions {
    std::vector<config::Listener> listeners;  // only coap / coaps ones are used
    // Max-Age (seconds) sent with 5.03 when the store has no room: when the device should retry.
    std::uint32_t no_room_max_age = 5;
};

class CoapServer {
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

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hubgate::coap
