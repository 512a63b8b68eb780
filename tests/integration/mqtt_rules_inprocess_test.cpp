// The MQTT session's translation path, in-process (so CI runs it under ASan/UBSan): an MqttServer
// with translation rules, driven by a raw MQTT client built with the codec, against a recording
// ingest. What it pins: PUBACKs for dropped messages keep their place among stored ones (§4.6), a
// Will is stored only when the connection ends without DISCONNECT, any filter is granted on a rule
// listener, and C2D takes the rule's c2d_topic on the device's or its bridge's connection.
#include <utility>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <optional>
#include <thread>

#include "adapters/mqtt/codec.hpp"
#include "adapters/mqtt/mqtt_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/translate/translator.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/recording_ingest.hpp"

using namespace hubgate;
using namespace hubgate::mqtt;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";

translate::RuleSpec rule(std::string name, std::string topic, std::string format, std::string c2d) {
    translate::RuleSpec r;
    r.name = std::move(name);
    r.topic = std::move(topic);
    r.format = std::move(format);
    r.device = "{device}";
    r.c2d_topic = std::move(c2d);
    if (r.format == "text") r.field = "power";
    return r;
}

// An MqttServer with a password listener named "lan" and two rules (Tasmota's POWER, Zigbee2MQTT
// through a bridge whose children are zb-*), on a background io_context.
struct Server {
    Server() {
        devices.replace_static({{"tasmota-1", kKey, ""}, {"z2m-bridge", kKey, "", "zb-*"}});
        std::vector<translate::CompileError> errors;
        translator.set_rules(translate::RuleSet::compile(
            {rule("tasmota-power", "stat/{device}/POWER", "text", "cmnd/{device}/{prop:command}"),
             rule("z2m", "zigbee2mqtt/{device}", "json", "zigbee2mqtt/{device}/set")},
            {"lan"}, "gw-1", errors));
        REQUIRE(errors.empty());
        translator.set_child_policy(
            [this](std::string_view bridge, std::string_view device) { return devices.may_speak_for(bridge, device); });
        config::Listener l;
        l.name = "lan";
        l.protocol = config::Protocol::mqtt;
        l.auth = config::ListenerAuth::password;
        l.bind = {"127.0.0.1", 0};
        ServerOptions opts;
        opts.listeners = {l};
        opts.translator = &translator;
        server = std::make_unique<MqttServer>(io, opts, devices, ingest, registry);
        server->set_reachability_listener([](const std::string&, bool) {});
        REQUIRE_FALSE(server->start().has_value());
        thread = std::thread([this] { io.run(); });
    }
    ~Server() {
        server->stop();
        io.stop();
        thread.join();
    }
    std::uint16_t port() const { return server->ports().at(0); }
    std::future<DeliveryOutcome> deliver(const std::string& device, HubMessage m) {
        auto p = std::make_shared<std::promise<DeliveryOutcome>>();
        auto f = p->get_future();
        server->deliver(device, std::move(m), [p](DeliveryOutcome o) { p->set_value(o); });
        return f;
    }
    bool stored_count(std::size_t n) {
        for (int i = 0; i < 500 && ingest.messages().size() < n; ++i) std::this_thread::sleep_for(10ms);
        return ingest.messages().size() == n;
    }

    boost::asio::io_context io;
    metrics::Registry registry;
    DeviceDirectory devices;
    translate::Translator translator{registry};
    test::RecordingIngest ingest;
    std::unique_ptr<MqttServer> server;
    std::thread thread;
};

// A raw MQTT 3.1.1 client: sends encoded packets, reads whole frames back.
struct Client {
    Client(std::uint16_t port, const std::string& user, std::optional<std::pair<std::string, std::string>> will = {})
        : sock(port), client_id("DVES_" + user) {
        ConnectPacket c;
        c.client_id = client_id;  // a view: the string lives in the Client
        c.keep_alive = 60;
        c.has_username = true;
        c.username = user;
        c.has_password = true;
        c.password = {reinterpret_cast<const std::uint8_t*>(kKey), std::strlen(kKey)};
        if (will) {
            c.has_will = true;
            c.will.topic = will->first;
            c.will.message = {reinterpret_cast<const std::uint8_t*>(will->second.data()), will->second.size()};
        }
        Buffer out;
        REQUIRE(encode_connect(out, c));
        REQUIRE(sock.send(out));
        const auto connack = next(PacketType::connack);
        REQUIRE(connack.size() == 4);
        REQUIRE(connack[3] == 0);
    }
    // The next whole packet of `type` (others are skipped), or empty after 5 s.
    std::vector<std::uint8_t> next(PacketType type) {
        for (int i = 0; i < 250; ++i) {
            while (true) {
                const Frame f = next_frame(in, 1 << 20);
                if (f.status != FrameStatus::complete) break;
                const std::size_t n = f.header.packet_size();
                std::vector<std::uint8_t> packet(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
                in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
                if (f.header.type == type) return packet;
            }
            const auto more = sock.receive(20ms);
            in.insert(in.end(), more.begin(), more.end());
        }
        return {};
    }
    void publish(const std::string& topic, const std::string& payload, std::uint16_t pid, Buffer& out) {
        REQUIRE(encode_publish(out, topic, payload, 1, pid));
    }

    test::RawSocket sock;
    std::string client_id;
    std::vector<std::uint8_t> in;
};

std::uint16_t packet_id_of(const std::vector<std::uint8_t>& puback) {
    REQUIRE(puback.size() == 4);
    return static_cast<std::uint16_t>(puback[2] << 8 | puback[3]);
}

}  // namespace

TEST_CASE("PUBACKs of dropped messages (unmatched, spoofed) keep their place among stored ones, and only the "
          "translated ones are stored") {
    Server s;
    Client c(s.port(), "tasmota-1");
    Buffer out;
    c.publish("stat/tasmota-1/POWER", "ON", 1, out);
    c.publish("tele/tasmota-1/INFO1", R"({"Module":"Sonoff Basic"})", 2, out);  // no rule: dropped
    c.publish("stat/other-plug/POWER", "ON", 3, out);                            // spoof: dropped
    c.publish("stat/tasmota-1/POWER", "OFF", 4, out);
    REQUIRE(c.sock.send(out));  // one write: one read on the server, one commit group
    for (std::uint16_t want : {1, 2, 3, 4}) CHECK(packet_id_of(c.next(PacketType::puback)) == want);
    REQUIRE(s.stored_count(2));
    const auto stored = s.ingest.messages();
    CHECK(stored[0].body == R"({"power":true})");
    CHECK(stored[1].body == R"({"power":false})");
    CHECK(stored[0].device_id == "tasmota-1");
    CHECK(s.registry.counter("hubgate_translate_unmatched_total", "", {{"listener", "lan"}, {"action", "drop"}})
              .value() == 1);
    CHECK(s.registry.counter("hubgate_translate_messages_total", "",
                             {{"rule", "tasmota-power"}, {"outcome", "spoof"}})
              .value() == 1);
}

TEST_CASE("a Will is stored through the rules when the connection drops, and not after DISCONNECT") {
    Server s;
    {
        Client clean(s.port(), "tasmota-1", std::make_pair(std::string("stat/tasmota-1/POWER"), std::string("OFF")));
        Buffer out;
        encode_disconnect(out);
        REQUIRE(clean.sock.send(out));
        CHECK(clean.sock.closed_by_peer(5s));
    }
    {
        Client dropped(s.port(), "tasmota-1", std::make_pair(std::string("stat/tasmota-1/POWER"), std::string("OFF")));
    }  // the socket closes without DISCONNECT
    REQUIRE(s.stored_count(1));
    CHECK(s.ingest.messages()[0].body == R"({"power":false})");
    CHECK(s.ingest.messages()[0].device_id == "tasmota-1");
}

TEST_CASE("on a rule listener any valid filter is granted, and C2D takes the rule's c2d_topic at the granted QoS") {
    Server s;
    Client c(s.port(), "tasmota-1");
    Buffer out;
    c.publish("stat/tasmota-1/POWER", "ON", 1, out);  // the route C2D will take
    const TopicFilter filters[] = {{"cmnd/tasmota-1/#", 1}, {"a/#/b", 1}};
    REQUIRE(encode_subscribe(out, 7, filters));
    REQUIRE(c.sock.send(out));
    const auto suback = c.next(PacketType::suback);
    REQUIRE(suback.size() == 6);
    CHECK(suback[4] == 1);
    CHECK(suback[5] == 0x80);
    REQUIRE(c.next(PacketType::puback).size() == 4);
    REQUIRE(s.stored_count(1));

    HubMessage cmd;
    cmd.body = "OFF";
    cmd.properties.set("command", "Power");
    auto outcome = s.deliver("tasmota-1", cmd);
    const auto publish = c.next(PacketType::publish);
    REQUIRE_FALSE(publish.empty());
    const Frame f = next_frame(publish, 1 << 20);
    const auto p = decode_publish(f);
    REQUIRE(p);
    CHECK(p.value.topic == "cmnd/tasmota-1/Power");
    CHECK(std::string(reinterpret_cast<const char*>(p.value.payload.data()), p.value.payload.size()) == "OFF");
    CHECK(p.value.qos == 1);
    Buffer ack;
    encode_puback(ack, p.value.packet_id);
    REQUIRE(c.sock.send(ack));
    REQUIRE(outcome.wait_for(5s) == std::future_status::ready);
    CHECK(outcome.get() == DeliveryOutcome::completed);
}

TEST_CASE("C2D for a bridge's child goes out on the bridge's connection, on the child's topic") {
    Server s;
    Client bridge(s.port(), "z2m-bridge");
    Buffer out;
    bridge.publish("zigbee2mqtt/zb-lamp", R"({"state":"ON","brightness":215})", 1, out);
    const TopicFilter filters[] = {{"zigbee2mqtt/+/set", 0}};
    REQUIRE(encode_subscribe(out, 2, filters));
    REQUIRE(bridge.sock.send(out));
    REQUIRE(bridge.next(PacketType::suback).size() == 5);
    REQUIRE(s.stored_count(1));
    CHECK(s.ingest.messages()[0].device_id == "zb-lamp");
    CHECK(s.devices.known("zb-lamp"));  // children become known devices

    HubMessage cmd;
    cmd.body = R"({"state":"OFF"})";
    auto outcome = s.deliver("zb-lamp", cmd);
    const auto publish = bridge.next(PacketType::publish);
    REQUIRE_FALSE(publish.empty());
    const auto p = decode_publish(next_frame(publish, 1 << 20));
    REQUIRE(p);
    CHECK(p.value.topic == "zigbee2mqtt/zb-lamp/set");
    CHECK(p.value.qos == 0);  // granted 0: the send completes it
    REQUIRE(outcome.wait_for(5s) == std::future_status::ready);
    CHECK(outcome.get() == DeliveryOutcome::completed);
    CHECK(s.deliver("zb-other", cmd).get() == DeliveryOutcome::unreachable);
}

TEST_CASE("a bridge's new child beyond gateway.max_seen_devices is acknowledged and dropped, and counted") {
    Server s;
    s.devices.set_seen_limit(1);
    Client bridge(s.port(), "z2m-bridge");
    Buffer out;
    bridge.publish("zigbee2mqtt/zb-lamp", R"({"state":"ON"})", 1, out);
    bridge.publish("zigbee2mqtt/zb-plug", R"({"state":"ON"})", 2, out);  // a second child: over the limit
    bridge.publish("zigbee2mqtt/zb-lamp", R"({"state":"OFF"})", 3, out);  // the known one still passes
    REQUIRE(bridge.sock.send(out));
    for (std::uint16_t want : {1, 2, 3}) CHECK(packet_id_of(bridge.next(PacketType::puback)) == want);
    REQUIRE(s.stored_count(2));
    for (const auto& m : s.ingest.messages()) CHECK(m.device_id == "zb-lamp");
    CHECK_FALSE(s.devices.known("zb-plug"));
    CHECK(s.registry.counter("hubgate_translate_messages_total", "",
                             {{"rule", "z2m"}, {"outcome", "seen_devices_full"}})
              .value() == 1);
}

TEST_CASE("the gateway's own shutdown does not publish its devices' Wills") {
    Server s;
    Client c(s.port(), "tasmota-1", std::make_pair(std::string("stat/tasmota-1/POWER"), std::string("OFF")));
    s.server->stop();  // closes every session before it returns; a Will would be handed to ingest there
    CHECK(c.sock.closed_by_peer(5s));
    CHECK(s.ingest.messages().empty());
}
