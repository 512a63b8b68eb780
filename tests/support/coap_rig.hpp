// The in-process CoAP server of the sanitized CoAP tests (coap_c2d, coap_telemetry,
// coap_rules_inprocess, coap_twin_inprocess): coap with auth none and coaps with PSK on 127.0.0.1,
// ephemeral ports, its io_context run on a thread of the test's own.
#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <string>
#include <thread>

#include "adapters/coap/coap_server.hpp"

namespace hubgate::test {

// Options with the two listeners (coap first, then coaps), `module_id` on both; the test sets the rest.
inline coap::ServerOptions coap_rig_options(const std::string& module_id = {}) {
    config::Listener udp;
    udp.protocol = config::Protocol::coap;
    udp.bind = {"127.0.0.1", 0};
    udp.auth = config::ListenerAuth::none;
    udp.module_id = module_id;
    config::Listener dtls = udp;
    dtls.protocol = config::Protocol::coaps;
    dtls.auth = config::ListenerAuth::psk;
    coap::ServerOptions opts;
    opts.listeners = {udp, dtls};
    return opts;
}

// Starts `server` (the test fails if it cannot) and runs `io` on the returned thread. The test's
// teardown stops `io`, joins the thread, then destroys the server (its timers belong to `io`).
inline std::thread start_coap_rig(coap::CoapServer& server, boost::asio::io_context& io) {
    auto err = server.start();
    REQUIRE_MESSAGE(!err, (err ? err->reason : ""));
    return std::thread([&io] { io.run(); });
}

// coap://127.0.0.1:PORT/path, or coaps:// for the second listener.
inline std::string coap_rig_uri(const coap::CoapServer& server, bool dtls, const std::string& path) {
    return std::string(dtls ? "coaps" : "coap") + "://127.0.0.1:" + std::to_string(server.ports().at(dtls ? 1 : 0)) +
           path;
}

}  // namespace hubgate::test
