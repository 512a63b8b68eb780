// The MQTT accept loop under descriptor exhaustion (EMFILE): it backs off, logs once, keeps serving
// the sessions it has, and accepts again once descriptors free up. The gateway runs under
// `prlimit --nofile` so the limit is reached with a few dozen sockets.
#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/raw_socket.hpp"

using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";

std::size_t count_of(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("when accept hits EMFILE the gateway logs once, keeps serving connected devices, and recovers") {
    TempDir dir;
    const auto metrics_port = free_tcp_port();
    const auto mqtt_port = free_tcp_port();
    const auto cfg = minimal_config(dir, metrics_port,
                                    listener_toml("mqtt", mqtt_port, "sas", "", "connect_timeout_seconds = 2\n") +
                                        device_toml("dev-1", kKey) + device_toml("dev-2", kKey));
    Gateway gw(dir, cfg, metrics_port, {"prlimit", "--nofile=48"});
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    const std::string uri = "tcp://127.0.0.1:" + std::to_string(mqtt_port);

    PahoDevice steady(uri, "dev-1", device_token("dev-1", kKey));
    REQUIRE(steady.connect() == 0);

    // Idle sockets that never send CONNECT use up the gateway's descriptors.
    std::vector<std::unique_ptr<RawSocket>> flood;
    for (int i = 0; i < 80; ++i) flood.push_back(std::make_unique<RawSocket>(mqtt_port));
    for (int i = 0; i < 200 && gw.metric("hubgate_mqtt_accept_errors_total") < 1; ++i) std::this_thread::sleep_for(20ms);
    CHECK(gw.metric("hubgate_mqtt_accept_errors_total") >= 1);

    // The device that was already connected keeps publishing through the exhaustion.
    for (int i = 0; i < 5; ++i)
        CHECK(steady.publish("devices/dev-1/messages/events/%24.mid=steady-" + std::to_string(i), "x", 1));

    // The idle sockets time out (connect_timeout_seconds) and free their descriptors; then a new
    // device gets in.
    flood.clear();
    PahoDevice late(uri, "dev-2", device_token("dev-2", kKey));
    int rc = -1;
    for (int attempt = 0; attempt < 20 && rc != 0; ++attempt) {
        rc = late.connect();
        if (rc != 0) std::this_thread::sleep_for(500ms);
    }
    CHECK(rc == 0);
    CHECK(late.publish("devices/dev-2/messages/events/%24.mid=late", "y", 1));
    CHECK(count_of(gw.process().output(), "mqtt listener 127.0.0.1:" + std::to_string(mqtt_port) + ": accept failed") == 1);
}
