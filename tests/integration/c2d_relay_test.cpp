// The C2D relay end to end: mosquitto plays the hub and publishes cloud-to-device messages to a real
// `hubgate run` (mqtt profile, gateway "gw-test"), local devices (Paho, or a raw socket that never
// acknowledges) receive them, and the feedback records the hub gets back are decoded and checked.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/mqtt/codec.hpp"
#include "gateway/model/property_bag.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_listener.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/mosquitto.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/raw_socket.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
namespace codec = hubgate::mqtt;

namespace {

constexpr const char* kKey = "YzJkLXJlbGF5LXRlc3Qta2V5LTAxMjM0NTY3ODlhYg==";

std::string c2d_filter(const std::string& device) { return "devices/" + device + "/messages/devicebound/#"; }

// A hub (mosquitto) with a listener for what the gateway sends up, and a gateway with one SAS
// listener and devices dev-1, dev-2 sharing kKey.
struct C2dRig : C2dHub {
    explicit C2dRig(const std::string& c2d_extra = {}) {
        std::string extra = listener_toml("mqtt", device_port, "sas", "edge");
        extra += device_toml("dev-1", kKey) + device_toml("dev-2", kKey);
        extra += "[c2d]\nmax_delivery_count = 3\nfeedback_max_delay_ms = 200\n" + c2d_extra + "\n";
        start_gateway(extra);
    }

    // A Paho device connected and subscribed to its own C2D topic.
    std::unique_ptr<PahoDevice> device(const std::string& id) {
        auto d = std::make_unique<PahoDevice>(device_uri(), id, device_token(id, kKey));
        REQUIRE(d->connect() == 0);
        REQUIRE(d->subscribe(c2d_filter(id), 1) == 1);
        return d;
    }

    std::string device_uri() const { return "tcp://127.0.0.1:" + std::to_string(device_port); }

    std::uint16_t device_port = free_tcp_port();
};

// What a device received, its topic's bag applied: system properties, application properties, body.
struct DeviceMessage {
    std::string topic;
    HubMessage message;
};

std::optional<DeviceMessage> next_c2d(PahoDevice& d, std::chrono::milliseconds timeout = 10s) {
    auto r = d.next_message(timeout);
    if (!r) return std::nullopt;
    DeviceMessage out{r->topic, {}};
    out.message.body = r->payload;
    const auto marker = r->topic.find("/messages/devicebound/");
    if (marker != std::string::npos) {
        const auto err = apply_property_bag(std::string_view(r->topic).substr(marker + 22), out.message);
        CHECK_MESSAGE(!err, "bad property bag on " << r->topic);
    }
    return out;
}

std::string mid_of(const std::optional<DeviceMessage>& m) { return m ? m->message.system.message_id : "(nothing)"; }

// A device that reads C2D but never acknowledges it: raw MQTT through hubgate's own codec.
class NoAckDevice {
public:
    NoAckDevice(std::uint16_t port, const std::string& id) : socket_(port) {
        const std::string token = device_token(id, kKey);
        const std::string username = device_username(id);
        codec::ConnectPacket c;
        c.client_id = id;
        c.keep_alive = 60;
        c.has_username = true;
        c.username = username;
        c.has_password = true;
        c.password = {reinterpret_cast<const std::uint8_t*>(token.data()), token.size()};
        codec::Buffer out;
        REQUIRE(codec::encode_connect(out, c));
        const std::string filter = c2d_filter(id);
        const codec::TopicFilter filters[] = {{filter, 1}};
        REQUIRE(codec::encode_subscribe(out, 1, filters));
        REQUIRE(socket_.send(out));
    }

    // The topic of the next PUBLISH within `timeout` (CONNACK and SUBACK skipped), never PUBACKed.
    std::optional<std::string> next_publish_topic(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            for (;;) {
                const auto f = codec::next_frame(buffer_, 1 << 20);
                if (f.status != codec::FrameStatus::complete) break;
                std::optional<std::string> topic;
                if (f.header.type == codec::PacketType::publish) {
                    const auto p = codec::decode_publish(f);
                    if (p) topic = std::string(p.value.topic);
                }
                buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(f.header.packet_size()));
                if (topic) return topic;
            }
            const auto more = socket_.receive(100ms);
            buffer_.insert(buffer_.end(), more.begin(), more.end());
        }
        return std::nullopt;
    }

private:
    RawSocket socket_;
    codec::Buffer buffer_;
};

std::string mid_in_topic(const std::string& topic) {
    HubMessage m;
    const auto marker = topic.find("/messages/devicebound/");
    if (marker == std::string::npos || apply_property_bag(std::string_view(topic).substr(marker + 22), m)) return {};
    return m.system.message_id;
}

}  // namespace

TEST_SUITE("c2d relay") {

TEST_CASE("an online device gets a C2D message on its devicebound topic with its properties and the hub gets "
          "Success feedback for the original message id") {
    C2dRig rig;
    auto dev = rig.device("dev-1");
    rig.send(C2dSend("c2d-online-1", "dev-1", "full")
                 .with_body("switch on")
                 .with_correlation_id("corr-7")
                 .with_property("k", "v")
                 .with_property("mode", "eco"));

    const auto got = next_c2d(*dev);
    REQUIRE_MESSAGE(got, "dev-1 received nothing");
    CHECK(got->topic.rfind("devices/dev-1/messages/devicebound/", 0) == 0);
    CHECK(got->message.system.message_id == "c2d-online-1");
    CHECK(got->message.system.correlation_id == "corr-7");
    CHECK(got->message.system.to == "/devices/dev-1/messages/devicebound");
    CHECK(got->message.body == "switch on");
    const auto* k = got->message.properties.find("k");
    const auto* mode = got->message.properties.find("mode");
    const auto* ack = got->message.properties.find("iothub-ack");
    CHECK((k && k->value == std::optional<std::string>("v")));
    CHECK((mode && mode->value == std::optional<std::string>("eco")));
    CHECK((ack && ack->value == std::optional<std::string>("full")));
    CHECK(got->message.properties.find("device-id") == nullptr);

    const auto fb = rig.wait_feedback("c2d-online-1", "Success");
    REQUIRE_MESSAGE(fb, "no Success feedback reached the hub");
    CHECK(fb->device_id == "dev-1");
    CHECK_FALSE(fb->enqueued_time.empty());
}

TEST_CASE("a message for an offline device is delivered when the device connects later") {
    C2dRig rig;
    rig.send(C2dSend("c2d-later-1", "dev-1", "none").with_body("for later"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == 1; }, 10s));
    std::this_thread::sleep_for(2s);  // the scenario: the device comes online later, not a wait for an outcome

    auto dev = rig.device("dev-1");
    const auto got = next_c2d(*dev);
    REQUIRE_MESSAGE(got, "dev-1 received nothing after connecting");
    CHECK(got->message.system.message_id == "c2d-later-1");
    CHECK(got->message.body == "for later");
}

TEST_CASE("a message that expires before its device connects is never delivered and the hub gets Expired "
          "feedback") {
    C2dRig rig;
    rig.send(C2dSend("c2d-expiring", "dev-1", "full").with_expiry(iso8601_in(2s)));
    const auto fb = rig.wait_feedback("c2d-expiring", "Expired");
    REQUIRE_MESSAGE(fb, "no Expired feedback reached the hub");
    CHECK(fb->device_id == "dev-1");

    // Sent after the expired one: the first thing the device gets must be this one.
    auto dev = rig.device("dev-1");
    rig.send(C2dSend("c2d-after-expiry", "dev-1", "none"));
    CHECK(mid_of(next_c2d(*dev)) == "c2d-after-expiry");
    CHECK(rig.c2d_metric("expired") == 1);
}

TEST_CASE("a message a device never acknowledges is redelivered with the same message id until "
          "max_delivery_count, then dead-lettered with DeliveryCountExceeded feedback") {
    C2dRig rig;
    rig.send(C2dSend("c2d-never-acked", "dev-1", "full"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == 1; }, 10s));

    std::vector<std::string> seen;
    for (int attempt = 0; attempt < 3; ++attempt) {
        NoAckDevice raw(rig.device_port, "dev-1");
        const auto topic = raw.next_publish_topic(10s);
        REQUIRE_MESSAGE(topic, "delivery attempt " << attempt + 1 << " never came");
        seen.push_back(mid_in_topic(*topic));
    }  // each socket closes without a PUBACK
    CHECK(seen == std::vector<std::string>{"c2d-never-acked", "c2d-never-acked", "c2d-never-acked"});

    const auto fb = rig.wait_feedback("c2d-never-acked", "DeliveryCountExceeded");
    REQUIRE_MESSAGE(fb, "no DeliveryCountExceeded feedback reached the hub");
    CHECK(fb->device_id == "dev-1");
    CHECK(rig.c2d_metric("dead_lettered") == 1);
    CHECK(rig.c2d_metric("delivered") == 3);
}

TEST_CASE("a message for a device the gateway does not know is not queued and the hub gets Rejected feedback") {
    C2dRig rig;
    rig.send(C2dSend("c2d-ghost", "ghost", "negative"));
    const auto fb = rig.wait_feedback("c2d-ghost", "Rejected");
    REQUIRE_MESSAGE(fb, "no Rejected feedback reached the hub");
    CHECK(fb->device_id == "ghost");
    CHECK(rig.c2d_metric("queued") == 0);
}

TEST_CASE("a message without a device-id property is not queued and the hub gets Rejected feedback") {
    C2dRig rig;
    rig.send(C2dSend("c2d-nobody", "", "full"));
    const auto fb = rig.wait_feedback("c2d-nobody", "Rejected");
    REQUIRE_MESSAGE(fb, "no Rejected feedback reached the hub");
    CHECK(fb->device_id.empty());
    CHECK(rig.c2d_metric("queued") == 0);
    CHECK(rig.gw->metric("hubgate_c2d_rejected_total{reason=\"no_device_id\"}") == 1);
}

TEST_CASE("a message for a device whose queue is full is not queued and the hub gets Rejected feedback") {
    C2dRig rig("queue_depth = 2\n");
    for (const char* id : {"c2d-full-1", "c2d-full-2", "c2d-full-3"}) rig.send(C2dSend(id, "dev-1"));
    const auto fb = rig.wait_feedback("c2d-full-3", "Rejected");
    REQUIRE_MESSAGE(fb, "no Rejected feedback for the third message\n" << rig.gw->process().output());
    CHECK(fb->device_id == "dev-1");

    auto dev = rig.device("dev-1");
    CHECK(mid_of(next_c2d(*dev)) == "c2d-full-1");
    CHECK(mid_of(next_c2d(*dev)) == "c2d-full-2");
    // Both completions reported: the queue is empty now, and the third message was never in it.
    REQUIRE(rig.wait_feedback("c2d-full-2", "Success"));
    CHECK_FALSE(dev->next_message(0ms).has_value());
    CHECK(rig.c2d_metric("queued") == 2);
}

TEST_CASE("a message id the hub sends twice while it is queued is delivered once") {
    C2dRig rig;
    rig.send(C2dSend("c2d-twice", "dev-1", "none").with_body("first copy"));
    rig.send(C2dSend("c2d-twice", "dev-1", "none").with_body("first copy"));
    rig.send(C2dSend("c2d-marker", "dev-1", "none"));
    // The hub's messages reach the gateway in order: once the marker is queued, so was the copy.
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") >= 2; }, 10s));

    auto dev = rig.device("dev-1");
    // Oldest first, one at a time: a queued copy would come between the original and the marker.
    CHECK(mid_of(next_c2d(*dev)) == "c2d-twice");
    CHECK(mid_of(next_c2d(*dev)) == "c2d-marker");
    CHECK(rig.c2d_metric("queued") == 2);
}

TEST_CASE("messages pending for an offline device survive a SIGKILL of the gateway and are delivered after the "
          "restart") {
    C2dRig rig;
    constexpr int kMessages = 20;
    auto mid = [](int i) { return "c2d-pending-" + std::to_string(i); };
    for (int i = 0; i < kMessages / 2; ++i) rig.send(C2dSend(mid(i), "dev-1", "none"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == kMessages / 2; }, 10s));
    // The rest is on its way to the gateway when it dies: whatever it acknowledged to the broker must
    // be in its store, and whatever it did not, the broker keeps for its persistent session.
    for (int i = kMessages / 2; i < kMessages; ++i) rig.send(C2dSend(mid(i), "dev-1", "none"));
    rig.gw->kill();
    rig.gw->start();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());

    auto dev = rig.device("dev-1");
    std::map<std::string, int> got;
    for (int i = 0; i < kMessages; ++i) {
        const auto m = next_c2d(*dev);
        if (!m) break;
        ++got[m->message.system.message_id];
    }
    std::vector<std::string> missing, duplicated;
    for (int i = 0; i < kMessages; ++i) {
        if (got[mid(i)] == 0) missing.push_back(mid(i));
        if (got[mid(i)] > 1) duplicated.push_back(mid(i));
    }
    CHECK_MESSAGE(missing.empty(), missing.size() << " lost, first " << (missing.empty() ? "" : missing.front()));
    CHECK_MESSAGE(duplicated.empty(), duplicated.size() << " delivered twice, first "
                                                        << (duplicated.empty() ? "" : duplicated.front()));
}

TEST_CASE("a device can neither subscribe to nor receive another device's C2D messages") {
    C2dRig rig;
    auto a = rig.device("dev-1");
    CHECK(a->subscribe(c2d_filter("dev-2"), 1) == 0x80);
    CHECK(a->subscribe("devices/+/messages/devicebound/#", 1) == 0x80);
    CHECK(a->subscribe("#", 1) == 0x80);

    rig.send(C2dSend("c2d-for-b", "dev-2", "none").with_body("b only"));
    rig.send(C2dSend("c2d-for-a", "dev-1", "none").with_body("a only"));
    // Sent after B's message: once A has its own, B's would have come first if it leaked.
    const auto first = next_c2d(*a);
    CHECK(mid_of(first) == "c2d-for-a");
    CHECK_FALSE(a->next_message(0ms).has_value());

    auto b = rig.device("dev-2");
    const auto got_b = next_c2d(*b);
    CHECK(mid_of(got_b) == "c2d-for-b");
    CHECK(got_b->topic.rfind("devices/dev-2/messages/devicebound/", 0) == 0);
}

}  // TEST_SUITE
