// The C2D hook the relay will use (deliver -> PUBLISH QoS 1 -> PUBACK = completed), exercised with
// an in-process MqttServer and a real Paho device over loopback. The ingest side is a fake that
// makes everything durable at once: this test is about the device-bound direction.
#include <utility>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <thread>

#include "adapters/mqtt/mqtt_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/pipeline/ingest.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/recording_ingest.hpp"

using namespace hubgate;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";


// An MqttServer on a background io_context with one SAS device, dev-1, and a reachability log.
struct Server {
    Server() {
        devices.replace_static({{"dev-1", kKey, ""}, {"dev-2", kKey, ""}});
        config::Listener l;
        l.protocol = config::Protocol::mqtt;
        l.bind = {"127.0.0.1", 0};
        hubgate::mqtt::ServerOptions opts;
        opts.listeners = {l};
        server = std::make_unique<hubgate::mqtt::MqttServer>(io, opts, devices, ingest, registry);
        server->set_reachability_listener([this](const std::string& d, bool r) {
            std::lock_guard lock(mu);
            reachability.emplace_back(d, r);
        });
        REQUIRE_FALSE(server->start().has_value());
        thread = std::thread([this] { io.run(); });
    }
    ~Server() {
        server->stop();
        io.stop();
        thread.join();
    }
    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(server->ports().at(0)); }
    DeliveryOutcome deliver(const std::string& device, HubMessage m) {
        std::promise<DeliveryOutcome> p;
        auto f = p.get_future();
        server->deliver(device, std::move(m), [&p](DeliveryOutcome o) { p.set_value(o); });
        REQUIRE(f.wait_for(10s) == std::future_status::ready);
        return f.get();
    }
    bool saw(const std::string& device, bool reachable) {
        for (int i = 0; i < 500; ++i) {
            {
                std::lock_guard lock(mu);
                for (const auto& [d, r] : reachability)
                    if (d == device && r == reachable) return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    boost::asio::io_context io;
    metrics::Registry registry;
    DeviceDirectory devices;
    test::RecordingIngest ingest;
    std::unique_ptr<hubgate::mqtt::MqttServer> server;
    std::thread thread;
    std::mutex mu;
    std::vector<std::pair<std::string, bool>> reachability;
};

HubMessage c2d_message() {
    HubMessage m;
    m.body = "turn on";
    m.system.message_id = "c2d-1";
    m.system.correlation_id = "corr";
    m.properties.set("mode", std::string("eco"));
    return m;
}

}  // namespace

TEST_CASE("a subscribed device receives a delivered C2D message on its devicebound topic and its PUBACK completes it") {
    Server s;
    test::PahoDevice dev(s.uri(), "dev-1", test::device_token("dev-1", kKey));
    REQUIRE(dev.connect() == 0);
    REQUIRE(dev.subscribe("devices/dev-1/messages/devicebound/#", 1) == 1);
    CHECK(s.saw("dev-1", true));
    CHECK(s.deliver("dev-1", c2d_message()) == DeliveryOutcome::completed);
    const auto got = dev.next_message(5s);
    REQUIRE(got.has_value());
    CHECK(got->topic == "devices/dev-1/messages/devicebound/%24.mid=c2d-1&%24.cid=corr&mode=eco");
    CHECK(got->payload == "turn on");
}

TEST_CASE("a device that is not connected, or connected but not subscribed, is unreachable") {
    Server s;
    CHECK(s.deliver("dev-1", c2d_message()) == DeliveryOutcome::unreachable);
    test::PahoDevice dev(s.uri(), "dev-1", test::device_token("dev-1", kKey));
    REQUIRE(dev.connect() == 0);
    CHECK(s.deliver("dev-1", c2d_message()) == DeliveryOutcome::unreachable);
}

TEST_CASE("a device cannot subscribe to another device's C2D messages nor receive them") {
    Server s;
    test::PahoDevice a(s.uri(), "dev-1", test::device_token("dev-1", kKey));
    test::PahoDevice b(s.uri(), "dev-2", test::device_token("dev-2", kKey));
    REQUIRE(a.connect() == 0);
    REQUIRE(b.connect() == 0);
    CHECK(a.subscribe("devices/dev-2/messages/devicebound/#", 1) == 0x80);
    REQUIRE(b.subscribe("devices/dev-2/messages/devicebound/#", 1) == 1);
    CHECK(s.deliver("dev-2", c2d_message()) == DeliveryOutcome::completed);
    CHECK(b.next_message(5s).has_value());
    CHECK_FALSE(a.next_message(300ms).has_value());
}

TEST_CASE("a device that disconnects goes unreachable, and one with a persistent session keeps its subscription") {
    Server s;
    {
        test::PahoDevice dev(s.uri(), "dev-1", test::device_token("dev-1", kKey));
        REQUIRE(dev.connect(false) == 0);
        REQUIRE(dev.subscribe("devices/dev-1/messages/devicebound/#", 1) == 1);
        dev.disconnect();
    }
    CHECK(s.saw("dev-1", false));
    test::PahoDevice again(s.uri(), "dev-1", test::device_token("dev-1", kKey));
    REQUIRE(again.connect(false) == 0);
    CHECK(again.session_present());
    // No new SUBSCRIBE: the persistent session's subscription is enough to be reachable.
    CHECK(s.deliver("dev-1", c2d_message()) == DeliveryOutcome::completed);
    CHECK(again.next_message(5s).has_value());
}
