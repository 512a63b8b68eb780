// Device-facing MQTT, the refused path: each case sends one thing the gateway must refuse (bad
// credentials, spoofing, oversize, QoS 2, malformed bytes from a raw socket, silence) and checks the
// specified outcome, while a second, well-behaved device keeps publishing QoS 1 unaffected.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/mqtt/codec.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
namespace codec = hubgate::mqtt;  // ::mqtt is Paho's namespace

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr const char* kOtherKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const std::vector<std::uint8_t> kConnackAccepted{0x20, 0x02, 0x00, 0x00};

// Publishes QoS 1 in a loop on its own thread, recording which message ids were acknowledged and
// whether any publish failed. Assertions stay on the test's thread.
class GoodDevice {
public:
    explicit GoodDevice(const std::string& uri) : dev_(uri, "dev-good", device_token("dev-good", kKey)) {
        connected_ = dev_.connect() == 0;
        if (connected_) thread_ = std::thread([this] { loop(); });
    }
    ~GoodDevice() { stop(); }

    bool connected() const { return connected_; }
    void stop() {
        running_ = false;
        if (thread_.joinable()) thread_.join();
    }
    std::size_t acked_count() {
        std::lock_guard lock(mu_);
        return acked_.size();
    }
    std::vector<std::string> acked() {
        std::lock_guard lock(mu_);
        return acked_;
    }
    int failures() const { return failures_; }

private:
    void loop() {
        for (int n = 0; running_; ++n) {
            const std::string mid = "good-" + std::to_string(n);
            if (dev_.publish("devices/dev-good/messages/events/%24.mid=" + mid, "good payload " + mid, 1)) {
                std::lock_guard lock(mu_);
                acked_.push_back(mid);
            } else {
                ++failures_;
            }
            // Pacing only (no assertion depends on it): leaves the 2 cores to the case under test.
            std::this_thread::sleep_for(5ms);
        }
    }

    PahoDevice dev_;
    bool connected_ = false;
    std::atomic<bool> running_{true};
    std::atomic<int> failures_{0};
    std::mutex mu_;
    std::vector<std::string> acked_;
    std::thread thread_;
};

// A gateway with one SAS listener and two devices ("dev-good", "dev-b"), and the good device
// already publishing. finish() checks that the good device was unaffected and returns the store.
struct RefusalGateway {
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t port = free_tcp_port();
    std::unique_ptr<Gateway> gw;
    std::unique_ptr<GoodDevice> good;

    explicit RefusalGateway(const std::string& listener_extra = {}) {
        const std::string extra = listener_toml("mqtt", port, "sas", "edge", listener_extra) +
                                  device_toml("dev-good", kKey) + device_toml("dev-b", kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
        good = std::make_unique<GoodDevice>(uri());
        REQUIRE(good->connected());
        REQUIRE(eventually([&] { return good->acked_count() >= 1; }, 10s));
    }

    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port); }
    double metric(const std::string& series) { return gw->metric(series); }

    // After the refusal: the good device still gets PUBACKs, never failed, and every message it
    // had acknowledged is in the store. Returns the store's contents.
    std::vector<HubMessage> finish() {
        const auto before = good->acked_count();
        CHECK_MESSAGE(eventually([&] { return good->acked_count() >= before + 3; }, 10s),
                      "the good device stopped getting PUBACKs");
        good->stop();
        CHECK(good->failures() == 0);
        const auto acked = good->acked();
        REQUIRE_MESSAGE(gw->stop() == 0, gw->process().output());
        auto stored = stored_messages(dir.file("hubgate.db"));
        const auto counts = count_by_message_id(stored);
        std::size_t missing = 0;
        for (const auto& mid : acked) missing += counts.count(mid) == 0 ? 1 : 0;
        CHECK(missing == 0);
        return stored;
    }
};

bool has_body(const std::vector<HubMessage>& stored, const std::string& body) {
    for (const auto& m : stored)
        if (m.body == body) return true;
    return false;
}

std::vector<std::uint8_t> connect_packet(const std::string& id, std::uint16_t keep_alive = 60,
                                         std::uint8_t protocol_level = 4) {
    static const std::string token = device_token("dev-b", kKey);
    static const std::string username = device_username("dev-b");
    codec::ConnectPacket c;
    c.protocol_level = protocol_level;
    c.client_id = id;
    c.keep_alive = keep_alive;
    c.has_username = true;
    c.username = username;
    c.has_password = true;
    c.password = {reinterpret_cast<const std::uint8_t*>(token.data()), token.size()};
    codec::Buffer out;
    REQUIRE(codec::encode_connect(out, c));
    return out;
}

// A raw socket that has sent a valid CONNECT for dev-b and received CONNACK 0x00.
std::unique_ptr<RawSocket> connected_raw(std::uint16_t port, std::uint16_t keep_alive = 60) {
    auto s = std::make_unique<RawSocket>(port);
    REQUIRE(s->send(connect_packet("dev-b", keep_alive)));
    REQUIRE(s->receive(5s, 4) == kConnackAccepted);
    return s;
}

// Connects dev-b with Paho, publishes one QoS 1 message that the gateway must refuse, and checks
// that it was not acknowledged and the connection was closed.
void publish_refused(RefusalGateway& g, const std::string& topic, const std::string& body, int qos = 1) {
    PahoDevice dev(g.uri(), "dev-b", device_token("dev-b", kKey));
    REQUIRE(dev.connect() == 0);
    CHECK_FALSE(dev.publish(topic, body, qos, 10s));
    CHECK(eventually([&] { return !dev.connected(); }, 10s));
}

int connect_code(RefusalGateway& g, const std::string& id, const std::string& password) {
    PahoDevice dev(g.uri(), id, password);
    return dev.connect();
}

}  // namespace

TEST_SUITE("mqtt refusals") {

TEST_CASE("a SAS token with a bad signature (valid expiry) is refused with CONNACK 0x05") {
    RefusalGateway g;
    CHECK(connect_code(g, "dev-b", device_token("dev-b", kOtherKey)) == 5);
    CHECK(g.metric("hubgate_mqtt_connects_refused_total{reason=\"bad_signature\"}") == 1);
    g.finish();
}

TEST_CASE("an expired SAS token (valid signature) is refused with CONNACK 0x05") {
    RefusalGateway g;
    CHECK(connect_code(g, "dev-b", device_token("dev-b", kKey, -60)) == 5);
    CHECK(g.metric("hubgate_mqtt_connects_refused_total{reason=\"expired_token\"}") == 1);
    g.finish();
}

TEST_CASE("an unknown device is refused with CONNACK 0x05") {
    RefusalGateway g;
    CHECK(connect_code(g, "ghost", device_token("ghost", kKey)) == 5);
    CHECK(g.metric("hubgate_mqtt_connects_refused_total{reason=\"unknown_device\"}") == 1);
    g.finish();
}

TEST_CASE("a password that is not a SAS token is refused with CONNACK 0x04") {
    RefusalGateway g;
    CHECK(connect_code(g, "dev-b", "hunter2") == 4);
    CHECK(g.metric("hubgate_mqtt_connects_refused_total{reason=\"malformed_token\"}") == 1);
    g.finish();
}

TEST_CASE("a PUBLISH on another device's topic is not acknowledged, closes the connection and is not stored") {
    RefusalGateway g;
    publish_refused(g, "devices/dev-good/messages/events/", "spoofed topic body");
    CHECK(g.metric("hubgate_mqtt_refused_total{reason=\"spoofed_topic\"}") == 1);
    CHECK_FALSE(has_body(g.finish(), "spoofed topic body"));
}

TEST_CASE("an application property device-id is refused as spoofing: no PUBACK, closed, not stored") {
    RefusalGateway g;
    publish_refused(g, "devices/dev-b/messages/events/device-id=dev-good", "spoofed property body");
    CHECK(g.metric("hubgate_mqtt_refused_total{reason=\"invalid_message\"}") == 1);
    CHECK_FALSE(has_body(g.finish(), "spoofed property body"));
}

TEST_CASE("a 262145-byte message is refused as oversize: no PUBACK, closed, not stored") {
    RefusalGateway g;
    const std::string mid = "big-no";  // size = body + message id
    const std::string body(262145 - mid.size(), 'o');
    publish_refused(g, "devices/dev-b/messages/events/%24.mid=" + mid, body);
    CHECK(g.metric("hubgate_mqtt_refused_total{reason=\"oversize\"}") == 1);
    CHECK(find_by_message_id(g.finish(), mid) == nullptr);
}

TEST_CASE("a 262144-byte message is accepted and stored") {
    RefusalGateway g;
    const std::string mid = "big-ok";
    const std::string body(262144 - mid.size(), 'k');
    PahoDevice dev(g.uri(), "dev-b", device_token("dev-b", kKey));
    REQUIRE(dev.connect() == 0);
    CHECK(dev.publish("devices/dev-b/messages/events/%24.mid=" + mid, body, 1));
    CHECK(dev.connected());
    dev.disconnect();
    const auto stored = g.finish();
    const auto* m = find_by_message_id(stored, mid);
    REQUIRE(m != nullptr);
    CHECK(hub_size(*m) == 262144);
    CHECK(m->body == body);
}

TEST_CASE("a non-ASCII property value is refused: no PUBACK, closed, not stored") {
    RefusalGateway g;
    publish_refused(g, "devices/dev-b/messages/events/place=caf%C3%A9", "bad characters body");
    CHECK(g.metric("hubgate_mqtt_refused_total{reason=\"invalid_message\"}") == 1);
    CHECK_FALSE(has_body(g.finish(), "bad characters body"));
}

TEST_CASE("a QoS 2 PUBLISH closes the connection without acknowledgement and is not stored") {
    RefusalGateway g;
    publish_refused(g, "devices/dev-b/messages/events/", "qos 2 body", 2);
    CHECK(g.metric("hubgate_mqtt_protocol_errors_total{reason=\"qos2\"}") == 1);
    CHECK_FALSE(has_body(g.finish(), "qos 2 body"));
}

TEST_CASE("a PUBLISH on a topic that is not a D2C topic is not acknowledged, closes, and is not stored") {
    RefusalGateway g;
    publish_refused(g, "devices/dev-b/telemetry", "wrong topic body");
    CHECK(g.metric("hubgate_mqtt_refused_total{reason=\"wrong_topic\"}") == 1);
    CHECK_FALSE(has_body(g.finish(), "wrong topic body"));
}

TEST_CASE("garbage bytes instead of CONNECT close the connection without any reply") {
    RefusalGateway g;
    RawSocket s(g.port);
    REQUIRE(s.send(std::string("GET / HTTP/1.1\r\nHost: hubgate\r\n\r\n")));
    CHECK(s.receive(5s, 1 << 20).empty());
    CHECK(s.closed_by_peer(5s));
    CHECK(g.metric("hubgate_mqtt_protocol_errors_total{reason=\"malformed\"}") == 1);
    g.finish();
}

TEST_CASE("a SUBSCRIBE with wrong reserved flags after a valid CONNECT closes the connection without SUBACK") {
    RefusalGateway g;
    auto s = connected_raw(g.port);
    const codec::TopicFilter filter{"devices/dev-b/messages/devicebound/#", 1};
    codec::Buffer sub;
    REQUIRE(codec::encode_subscribe(sub, 7, {&filter, 1}));
    REQUIRE(sub[0] == 0x82);
    sub[0] = 0x80;  // §3.8.1: the reserved flags of SUBSCRIBE must be 0010
    REQUIRE(s->send(sub));
    CHECK(s->receive(5s, 1 << 20).empty());
    CHECK(s->closed_by_peer(5s));
    CHECK(g.metric("hubgate_mqtt_protocol_errors_total{reason=\"malformed\"}") == 1);
    g.finish();
}

TEST_CASE("a CONNECT with protocol level 3 gets CONNACK 0x01 and the connection is closed") {
    RefusalGateway g;
    RawSocket s(g.port);
    REQUIRE(s.send(connect_packet("dev-b", 60, 3)));
    CHECK(s.receive(5s, 4) == std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x01});
    CHECK(s.closed_by_peer(5s));
    CHECK(g.metric("hubgate_mqtt_connects_refused_total{reason=\"protocol_version\"}") == 1);
    g.finish();
}

TEST_CASE("a PUBLISH header claiming 256 MB with nothing behind it is closed at once without allocating it") {
    RefusalGateway g;
    auto s = connected_raw(g.port);
    const long rss_before = g.gw->rss_kib();
    REQUIRE(rss_before > 0);
    REQUIRE(s->send(std::vector<std::uint8_t>{0x30, 0xFF, 0xFF, 0xFF, 0x7F}));
    CHECK(s->closed_by_peer(5s));
    const long rss_after = g.gw->rss_kib();
    CHECK_MESSAGE(rss_after - rss_before < 32 * 1024, "VmRSS grew from " << rss_before << " to " << rss_after << " KiB");
    CHECK(g.metric("hubgate_mqtt_protocol_errors_total{reason=\"too_large\"}") == 1);
    g.finish();
}

TEST_CASE("a session whose SAS token expires is closed by the gateway") {
    RefusalGateway g;
    PahoDevice dev(g.uri(), "dev-b", device_token("dev-b", kKey, 3));
    REQUIRE(dev.connect() == 0);
    CHECK(eventually([&] { return !dev.connected(); }, 15s));
    CHECK(g.metric("hubgate_mqtt_token_expiries_total") == 1);
    g.finish();
}

TEST_CASE("a connection that never sends CONNECT is closed after connect_timeout_seconds") {
    RefusalGateway g("connect_timeout_seconds = 1\n");
    RawSocket s(g.port);
    CHECK(s.closed_by_peer(10s));
    CHECK(g.metric("hubgate_mqtt_protocol_errors_total{reason=\"connect_timeout\"}") == 1);
    g.finish();
}

TEST_CASE("a session silent for 1.5 x its keep-alive is closed") {
    RefusalGateway g;
    auto s = connected_raw(g.port, 1);
    CHECK(s->closed_by_peer(10s));
    CHECK(g.metric("hubgate_mqtt_keepalive_timeouts_total") == 1);
    g.finish();
}

}  // TEST_SUITE

TEST_CASE("with on_full = reject-new and a full store the next QoS 1 message gets no PUBACK but the connection "
          "stays open") {
    TempDir dir;
    const auto metrics_port = free_tcp_port();
    const auto port = free_tcp_port();
    Gateway gw(dir,
               minimal_config(dir, metrics_port, listener_toml("mqtt", port) + device_toml("dev-b", kKey),
                              "max_messages = 5\non_full = \"reject-new\"\n"),
               metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    PahoDevice dev("tcp://127.0.0.1:" + std::to_string(port), "dev-b", device_token("dev-b", kKey));
    REQUIRE(dev.connect() == 0);
    for (int i = 0; i < 5; ++i)
        CHECK(dev.publish("devices/dev-b/messages/events/%24.mid=bp-" + std::to_string(i), "fits", 1));
    // There is no upstream to drain the store, so the sixth cannot become durable.
    CHECK_FALSE(dev.publish("devices/dev-b/messages/events/%24.mid=bp-5", "no room", 1, 2s));
    CHECK(dev.connected());
    CHECK(gw.metric("hubgate_mqtt_backpressure_total") == 1);
    gw.kill();
    const auto stored = stored_messages(dir.file("hubgate.db"));
    CHECK(stored.size() == 5);
    CHECK(find_by_message_id(stored, "bp-5") == nullptr);
}
