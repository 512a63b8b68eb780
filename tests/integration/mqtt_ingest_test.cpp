// Device-facing MQTT, the accepted path: real clients (mosquitto_pub, Paho C++) publish to a real
// `hubgate run` over loopback, and what lands in the store is checked byte for byte.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr int kSwarmDevices = 100;
constexpr int kSwarmMessages = 20;

// A gateway with one SAS listener (listener module "edge"), a device with its own module
// ("dev-mod" -> "thermostats"), one without ("dev-plain"), the swarm devices, and optionally a
// second listener with auth = "none".
struct IngestGateway {
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t port = free_tcp_port();
    std::uint16_t open_port = free_tcp_port();
    std::unique_ptr<Gateway> gw;

    explicit IngestGateway(bool with_open_listener = false) {
        std::string extra = listener_toml("mqtt", port, "sas", "edge");
        if (with_open_listener) extra += listener_toml("mqtt", open_port, "none", "open-edge");
        extra += device_toml("dev-mod", kKey, "thermostats") + device_toml("dev-plain", kKey);
        for (int i = 0; i < kSwarmDevices; ++i) extra += device_toml("swarm-" + std::to_string(i), kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    }

    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port); }

    // Stops the gateway (SIGTERM finishes the commit in flight) and reads back the store.
    std::vector<HubMessage> stop_and_read() {
        REQUIRE_MESSAGE(gw->stop() == 0, gw->process().output());
        return stored_messages(dir.file("hubgate.db"));
    }
};

std::string all_byte_values() {
    std::string body;
    for (int i = 0; i < 256; ++i) body.push_back(static_cast<char>(i));
    return body + std::string("\r\n\0 tail", 8);
}

}  // namespace

TEST_CASE("a QoS 1 message from mosquitto_pub is stored byte for byte: body, system and application properties, "
          "device and the device's module") {
    IngestGateway g;
    const std::string body = all_byte_values();
    const auto file = g.dir.write("body.bin", body);
    const auto r = mosquitto_pub(g.port, "dev-mod", device_token("dev-mod", kKey),
                                 {"-q", "1", "-f", file, "-t",
                                  "devices/dev-mod/messages/events/"
                                  "%24.mid=m1&%24.cid=c1&%24.ct=application%2Fjson&%24.ce=utf-8&temp=21.5&note=a%20b"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);

    const auto stored = g.stop_and_read();
    REQUIRE(stored.size() == 1);
    HubMessage expected;
    expected.body = body;
    expected.system.message_id = "m1";
    expected.system.correlation_id = "c1";
    expected.system.content_type = "application/json";
    expected.system.content_encoding = "utf-8";
    expected.properties.set("temp", "21.5");
    expected.properties.set("note", "a b");
    expected.device_id = "dev-mod";
    expected.module_id = "thermostats";
    CHECK(stored[0].enqueued_ms > 0);
    expected.enqueued_ms = stored[0].enqueued_ms;
    CHECK(stored[0] == expected);
}

TEST_CASE("the module id is the topic's module, else the device's configured module, else the listener's") {
    IngestGateway g;
    const auto token_plain = device_token("dev-plain", kKey);
    const auto token_mod = device_token("dev-mod", kKey);
    auto pub = [&](const std::string& id, const std::string& token, const std::string& topic) {
        const auto r = mosquitto_pub(g.port, id, token, {"-q", "1", "-m", "x", "-t", topic});
        CHECK_MESSAGE(r.exit_code == 0, r.output);
    };
    pub("dev-plain", token_plain, "devices/dev-plain/messages/events/%24.mid=listener");
    pub("dev-plain", token_plain, "devices/dev-plain/modules/m7/messages/events/%24.mid=topic");
    pub("dev-mod", token_mod, "devices/dev-mod/messages/events/%24.mid=device");
    pub("dev-mod", token_mod, "devices/dev-mod/modules/m8/messages/events/%24.mid=topic-over-device");

    const auto stored = g.stop_and_read();
    auto module_of = [&](const char* mid) {
        const auto* m = find_by_message_id(stored, mid);
        return m ? m->module_id : std::string("<not stored>");
    };
    CHECK(module_of("listener") == "edge");
    CHECK(module_of("topic") == "m7");
    CHECK(module_of("device") == "thermostats");
    CHECK(module_of("topic-over-device") == "m8");
}

TEST_CASE("a QoS 0 message is stored too") {
    IngestGateway g;
    const auto r = mosquitto_pub(g.port, "dev-plain", device_token("dev-plain", kKey),
                                 {"-q", "0", "-m", "fire and forget", "-t", "devices/dev-plain/messages/events/%24.mid=q0"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    // QoS 0 has no PUBACK to wait for: poll the door counter, then stop (which finishes the commit).
    CHECK(eventually([&] { return g.gw->metric("hubgate_mqtt_messages_total{qos=\"0\"}") == 1; }, 10s));
    const auto stored = g.stop_and_read();
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].system.message_id == "q0");
    CHECK(stored[0].body == "fire and forget");
    CHECK(stored[0].device_id == "dev-plain");
}

TEST_CASE("a message without $.mid is stored with a UUID message id") {
    IngestGateway g;
    const auto r = mosquitto_pub(g.port, "dev-plain", device_token("dev-plain", kKey),
                                 {"-q", "1", "-m", "no id", "-t", "devices/dev-plain/messages/events/k=v"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto stored = g.stop_and_read();
    REQUIRE(stored.size() == 1);
    static const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    CHECK_MESSAGE(std::regex_match(stored[0].system.message_id, uuid), stored[0].system.message_id);
}

TEST_CASE("iothub-creation-time-utc becomes the creation-time system property, not an application property") {
    IngestGateway g;
    const auto r = mosquitto_pub(
        g.port, "dev-plain", device_token("dev-plain", kKey),
        {"-q", "1", "-m", "t", "-t",
         "devices/dev-plain/messages/events/%24.mid=ct1&iothub-creation-time-utc=2024-01-02T03%3A04%3A05.678Z&a=1"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto stored = g.stop_and_read();
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].system.creation_time == "2024-01-02T03:04:05.678Z");
    CHECK(stored[0].properties.find("iothub-creation-time-utc") == nullptr);
    REQUIRE(stored[0].properties.size() == 1);
    CHECK(stored[0].properties.find("a") != nullptr);
}

TEST_CASE("100 concurrent Paho devices x 20 QoS 1 messages: all 2000 are stored, each exactly once") {
    IngestGateway g;
    std::atomic<int> refused_connects{0};
    std::atomic<int> failed_publishes{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kSwarmDevices; ++i) {
        threads.emplace_back([&, i] {
            const std::string id = "swarm-" + std::to_string(i);
            PahoDevice dev(g.uri(), id, device_token(id, kKey));
            if (dev.connect() != 0) {
                ++refused_connects;
                return;
            }
            for (int j = 0; j < kSwarmMessages; ++j) {
                const std::string mid = id + "-" + std::to_string(j);
                if (!dev.publish("devices/" + id + "/messages/events/%24.mid=" + mid, "payload " + mid, 1))
                    ++failed_publishes;
            }
            dev.disconnect();
        });
    }
    for (auto& t : threads) t.join();
    CHECK(refused_connects == 0);
    CHECK(failed_publishes == 0);

    const auto stored = g.stop_and_read();
    CHECK(stored.size() == kSwarmDevices * kSwarmMessages);
    const auto counts = count_by_message_id(stored);
    int missing = 0;
    int duplicated = 0;
    for (int i = 0; i < kSwarmDevices; ++i) {
        for (int j = 0; j < kSwarmMessages; ++j) {
            const auto it = counts.find("swarm-" + std::to_string(i) + "-" + std::to_string(j));
            if (it == counts.end()) ++missing;
            else if (it->second != 1) ++duplicated;
        }
    }
    CHECK(missing == 0);
    CHECK(duplicated == 0);
    int wrong_device = 0;
    for (const auto& m : stored)
        if (m.system.message_id.rfind(m.device_id + "-", 0) != 0 || m.body != "payload " + m.system.message_id)
            ++wrong_device;
    CHECK(wrong_device == 0);
}

TEST_CASE("clean session 0 is resumed with session-present and clean session 1 starts without one") {
    IngestGateway g;
    const auto token = device_token("dev-plain", kKey);
    {
        PahoDevice first(g.uri(), "dev-plain", token);
        REQUIRE(first.connect(false) == 0);
        CHECK_FALSE(first.session_present());
        CHECK(first.subscribe("devices/dev-plain/messages/devicebound/#", 1) == 1);
        first.disconnect();
    }
    {
        PahoDevice again(g.uri(), "dev-plain", token);
        REQUIRE(again.connect(false) == 0);
        CHECK(again.session_present());
        again.disconnect();
    }
    PahoDevice fresh(g.uri(), "dev-plain", token);
    REQUIRE(fresh.connect(true) == 0);
    CHECK_FALSE(fresh.session_present());
}

TEST_CASE("a second CONNECT with the same client id closes the older session") {
    IngestGateway g;
    const auto token = device_token("dev-plain", kKey);
    PahoDevice older(g.uri(), "dev-plain", token);
    REQUIRE(older.connect() == 0);
    PahoDevice newer(g.uri(), "dev-plain", token);
    REQUIRE(newer.connect() == 0);
    CHECK(eventually([&] { return !older.connected(); }, 15s));  // Paho notices the close slowly (~2.4 s idle, more under load)
    CHECK(newer.connected());
    CHECK(newer.publish("devices/dev-plain/messages/events/%24.mid=after-takeover", "x", 1));
    CHECK(g.gw->metric("hubgate_mqtt_takeovers_total") == 1);
}

TEST_CASE("SUBSCRIBE to another device's devicebound topic gets 0x80 and QoS 2 on its own is granted as QoS 1") {
    IngestGateway g;
    PahoDevice dev(g.uri(), "dev-plain", device_token("dev-plain", kKey));
    REQUIRE(dev.connect() == 0);
    CHECK(dev.subscribe("devices/dev-mod/messages/devicebound/#", 1) == 0x80);
    CHECK(dev.subscribe("devices/dev-plain/messages/devicebound/#", 2) == 1);
    CHECK(dev.connected());
    CHECK(g.gw->metric("hubgate_mqtt_refused_total{reason=\"subscribe\"}") == 1);
}

TEST_CASE("mosquitto_sub is granted its own devicebound topic and denied another device's") {
    IngestGateway g;
    auto sub = [&](const std::string& filter) {
        // -E: exit once the SUBACK arrived (mosquitto_sub reports a 0x80 as "denied").
        return run({"mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(g.port), "-i", "dev-plain",
                    "-u", device_username("dev-plain"), "-P", device_token("dev-plain", kKey), "-q", "1", "-t", filter,
                    "-E"});
    };
    const auto own = sub("devices/dev-plain/messages/devicebound/#");
    CHECK_MESSAGE(own.exit_code == 0, own.output);
    CHECK(own.output.find("denied") == std::string::npos);
    const auto other = sub("devices/dev-mod/messages/devicebound/#");
    CHECK_MESSAGE(other.output.find("denied") != std::string::npos, other.output);
}

TEST_CASE("an auth = none listener accepts any client id without a password and stores under that id") {
    IngestGateway g(true);
    const auto r = mosquitto_pub(g.open_port, "anon-42", std::nullopt,
                                 {"-q", "1", "-m", "hello", "-t", "devices/anon-42/messages/events/%24.mid=open1"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto stored = g.stop_and_read();
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].device_id == "anon-42");
    CHECK(stored[0].module_id == "open-edge");
    CHECK(stored[0].body == "hello");
}
