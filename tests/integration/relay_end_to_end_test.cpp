// The upstream relay when nothing fails: Paho devices publish to a real `hubgate run`, a real
// mosquitto on a free loopback port plays the hub, and what the hub receives is decoded and compared
// with what the devices sent, in both batch modes.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/paho_device.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr int kDevices = 10;
constexpr int kPerDevice = 1000;

std::string first_of(const std::vector<std::string>& v) { return v.empty() ? std::string() : v.front(); }

std::string device_name(int d) { return "e2e-" + std::to_string(d); }
std::string message_id(int d, int i) { return device_name(d) + "-" + std::to_string(i); }

// Every 7th body is bytes that are not UTF-8 (the base64 path); the others are text that needs JSON
// escaping (quote, backslash, control characters, non-ASCII).
std::string body_of(int d, int i) {
    if (i % 7 == 0) return std::string("\xff\x00\x01", 3) + std::to_string(d) + "\xfe" + std::to_string(i);
    return "{\"dev\":" + std::to_string(d) + ",\"seq\":" + std::to_string(i) + ",\"s\":\"q\\\"\\\\\t\n\u00e9\"}";
}

// What the hub must see for message i of device d: its body, id and application properties (one
// with a value containing a space, one without a value), its device and the listener's module.
HubMessage expected_message(int d, int i) {
    HubMessage m;
    m.device_id = device_name(d);
    m.module_id = "edge";
    m.system.message_id = message_id(d, i);
    m.properties.set("seq", std::to_string(i));
    m.properties.set("note", "a b");
    m.properties.set("flag", std::nullopt);
    m.body = body_of(d, i);
    return m;
}

std::string topic_of(int d, int i) {
    return "devices/" + device_name(d) + "/messages/events/%24.mid=" + message_id(d, i) + "&seq=" +
           std::to_string(i) + "&note=a%20b&flag";
}

void check_end_to_end(bool batch) {
    std::vector<std::string> ids;
    for (int d = 0; d < kDevices; ++d) ids.push_back(device_name(d));
    RelayRig rig(batch, ids, kKey);

    std::atomic<int> refused{0};
    std::vector<std::thread> devices;
    for (int d = 0; d < kDevices; ++d) {
        devices.emplace_back([&, d] {
            PahoDevice dev(rig.device_uri(), device_name(d),
                           device_token(device_name(d), kKey));
            if (dev.connect() != 0) {
                refused += kPerDevice;
                return;
            }
            for (int i = 0; i < kPerDevice; ++i)
                if (!dev.publish(topic_of(d, i), body_of(d, i), 1)) ++refused;
            dev.disconnect();
        });
    }
    for (auto& t : devices) t.join();
    REQUIRE_MESSAGE(refused == 0, "publishes not acknowledged by the gateway: " << refused.load());

    constexpr std::size_t total = kDevices * kPerDevice;
    HubTrafficReader reader(*rig.listener);
    REQUIRE_MESSAGE(reader.wait_for_messages(total, 30s), "the hub received " << reader.traffic().messages.size()
                                                                             << " of " << total << " messages");
    // The store is emptied only by the hub's PUBACKs: when it is empty, everything was acknowledged,
    // and any duplicate would have been published by now.
    CHECK(eventually([&] { return rig.gw->metric("hubgate_store_messages") == 0; }, 10s));
    const HubTraffic& traffic = reader.update();
    REQUIRE_MESSAGE(traffic.errors.empty(), first_of(traffic.errors));

    std::map<std::string, int> seen;
    std::map<std::string, int> last_seq;  // per device: ids must arrive in the order they were sent
    std::vector<std::string> unexpected, altered, out_of_order;
    for (const auto& r : traffic.messages) {
        const auto& m = r.message;
        ++seen[m.system.message_id];
        const auto dash = m.system.message_id.rfind('-');
        const auto dev_part = m.system.message_id.substr(0, dash == std::string::npos ? 0 : dash);
        int d = -1, i = -1;
        for (int k = 0; k < kDevices; ++k)
            if (dev_part == device_name(k)) d = k;
        if (d >= 0) i = std::stoi(m.system.message_id.substr(dash + 1));
        if (d < 0 || i < 0 || i >= kPerDevice) {
            unexpected.push_back(m.system.message_id);
            continue;
        }
        if (!(m == expected_message(d, i))) altered.push_back(m.system.message_id);
        auto [it, first] = last_seq.try_emplace(m.device_id, i);
        if (!first) {
            if (i <= it->second) out_of_order.push_back(m.system.message_id);
            it->second = i;
        }
    }
    std::vector<std::string> missing, duplicated;
    for (int d = 0; d < kDevices; ++d)
        for (int i = 0; i < kPerDevice; ++i) {
            const auto it = seen.find(message_id(d, i));
            if (it == seen.end()) missing.push_back(message_id(d, i));
            else if (it->second > 1) duplicated.push_back(message_id(d, i));
        }
    CHECK(traffic.messages.size() == total);
    CHECK_MESSAGE(missing.empty(), missing.size() << " missing, first " << first_of(missing));
    CHECK_MESSAGE(duplicated.empty(), duplicated.size() << " duplicated, first " << first_of(duplicated));
    CHECK_MESSAGE(unexpected.empty(), unexpected.size() << " unexpected, first " << first_of(unexpected));
    CHECK_MESSAGE(altered.empty(), altered.size() << " altered (body or properties), first " << first_of(altered));
    CHECK_MESSAGE(out_of_order.empty(), out_of_order.size() << " out of per-device order, first " << first_of(out_of_order));

    std::size_t batches = 0, wrong_gateway = 0;
    for (const auto& p : traffic.publishes) {
        if (p.batch) ++batches;
        if (p.gateway_id != "gw-test") ++wrong_gateway;
    }
    CHECK(wrong_gateway == 0);
    if (batch) {
        CHECK(batches == traffic.publishes.size());
        CHECK(traffic.publishes.size() < total);  // messages really were packed together
    } else {
        CHECK(batches == 0);
        CHECK(traffic.publishes.size() == total);
    }
}

}  // namespace

TEST_CASE("batch mode: 10 devices x 1000 QoS 1 messages each arrive upstream exactly once with bodies, properties "
          "and per-device order intact, and the store ends empty") {
    check_end_to_end(true);
}

TEST_CASE("unbatched mode: 10 devices x 1000 QoS 1 messages each arrive upstream exactly once with bodies, "
          "properties and per-device order intact, and the store ends empty") {
    check_end_to_end(false);
}
