// The upstream relay under faults: the gateway SIGKILLed in the middle of a drain, and the hub (a real
// mosquitto) restarted several times while devices keep publishing. At-least-once: duplicates are
// allowed (and reported), losses are not.
#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

std::string first_of(const std::vector<std::string>& v) { return v.empty() ? std::string() : v.front(); }

// Polls until every key in `expected` arrived at least once; returns those still missing.
std::vector<std::string> wait_for_keys(HubTrafficReader& reader, const std::vector<std::string>& expected,
                                       const std::function<std::string(const HubMessage&)>& key_of,
                                       std::chrono::milliseconds timeout) {
    std::vector<std::string> missing;
    eventually(
        [&] {
            reader.wait_for_messages(expected.size(), 200ms);
            const auto arrivals = count_arrivals(reader.traffic(), key_of);
            missing.clear();
            for (const auto& k : expected)
                if (!arrivals.count(k)) missing.push_back(k);
            return missing.empty();
        },
        timeout);
    return missing;
}

std::size_t duplicates(const HubTraffic& traffic, const std::function<std::string(const HubMessage&)>& key_of) {
    std::size_t extra = 0;
    for (const auto& [key, n] : count_arrivals(traffic, key_of)) extra += n - 1;
    return extra;
}

}  // namespace

TEST_CASE("a gateway SIGKILLed in the middle of a drain and restarted still delivers every stored message at least "
          "once") {
    constexpr int kPerDevice = 5000;
    const std::vector<std::string> ids{"kill-0", "kill-1", "kill-2", "kill-3"};
    const std::size_t total = ids.size() * kPerDevice;
    RelayRig rig(true, ids, kKey);
    rig.hub.stop();
    const auto failures = rig.publish_lines(ids, kPerDevice, kKey);
    REQUIRE_MESSAGE(failures.empty(), failures);
    REQUIRE(eventually([&] { return rig.gw->metric("hubgate_store_messages") == total; }, 30s));

    rig.hub.start();
    // Kill as soon as the hub has acknowledged something: the drain is under way.
    double relayed = 0;
    REQUIRE(eventually(
        [&] {
            relayed = rig.gw->metric("hubgate_upstream_messages_relayed_total");
            return relayed > 0;
        },
        60s));
    rig.gw->kill();
    MESSAGE("killed after " << relayed << " of " << total << " messages were acknowledged upstream; the store "
                            << "still held " << stored_messages(rig.dir.file("hubgate.db")).size());
    // Otherwise the drain finished before the kill and the test would not test the rule.
    REQUIRE(relayed < static_cast<double>(total));

    rig.gw->start();
    REQUIRE_MESSAGE(rig.gw->wait_ready(), rig.gw->process().output());
    CHECK(eventually([&] { return rig.gw->metric("hubgate_store_messages") == 0; }, 60s));

    std::vector<std::string> expected;
    for (const auto& id : ids)
        for (int i = 0; i < kPerDevice; ++i) expected.push_back(body_key(id, i));
    HubTrafficReader reader(*rig.listener);
    const auto key_of = [](const HubMessage& m) { return body_key(m); };
    const auto missing = wait_for_keys(reader, expected, key_of, 30s);
    const HubTraffic& traffic = reader.traffic();
    CHECK_MESSAGE(traffic.errors.empty(), first_of(traffic.errors));
    CHECK_MESSAGE(missing.empty(), missing.size() << " never arrived, first " << first_of(missing));
    MESSAGE(traffic.messages.size() << " messages arrived for " << total << " stored: " << duplicates(traffic, key_of)
                                    << " duplicates; the restarted gateway relayed "
                                    << rig.gw->metric("hubgate_upstream_messages_relayed_total"));
}

TEST_CASE("a hub restarted three times while devices keep publishing receives every message the gateway "
          "acknowledged") {
    constexpr int kPerDevice = 4000;
    const std::vector<std::string> ids{"load-0", "load-1", "load-2", "load-3", "load-4"};
    const std::size_t total = ids.size() * kPerDevice;
    RelayRig rig(true, ids, kKey);

    // Paho devices with explicit ids, so that each PUBACK names exactly which message the gateway
    // took responsibility for.
    std::mutex mu;
    std::vector<std::string> acknowledged;
    std::atomic<std::size_t> progress{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> devices;
    for (const auto& id : ids)
        devices.emplace_back([&, id] {
            PahoDevice dev(rig.device_uri(), id, device_token(id, kKey));
            if (dev.connect() != 0) {
                refused += kPerDevice;
                return;
            }
            for (int i = 0; i < kPerDevice; ++i) {
                const std::string mid = id + "-" + std::to_string(i);
                if (dev.publish("devices/" + id + "/messages/events/%24.mid=" + mid + "&n=" + std::to_string(i),
                                "reading " + std::to_string(i), 1)) {
                    std::lock_guard lock(mu);
                    acknowledged.push_back(mid);
                } else {
                    ++refused;
                }
                ++progress;
            }
            dev.disconnect();
        });

    // Restart the hub at a quarter, half and three quarters of the load. Stop and start (SIGTERM,
    // which saves mosquitto's state), not SIGKILL: a SIGKILLed mosquitto may lose messages it had
    // already acknowledged to the gateway (and the listener's session, autosaved every second), which
    // would be mosquitto's loss, not hubgate's, and would make a no-loss assertion meaningless.
    // The hub is paused first until the gateway has publishes waiting for a PUBACK, so that the stop
    // catches publishes in flight, the case where the relay must send again.
    int restarts = 0;
    for (int k = 1; k <= 3; ++k) {
        eventually([&] { return progress.load() >= total * static_cast<std::size_t>(k) / 4; }, 60s);
        rig.hub.pause();
        eventually([&] { return rig.gw->metric("hubgate_upstream_inflight") > 0; }, 5s);
        rig.hub.stop();
        MESSAGE("hub restart " << k << " after " << progress.load() << " of " << total << " publishes");
        rig.hub.start();
        ++restarts;
    }
    for (auto& t : devices) t.join();
    CHECK(restarts == 3);
    CHECK_MESSAGE(refused == 0, refused.load() << " publishes were not acknowledged by the gateway");

    CHECK(eventually([&] { return rig.gw->metric("hubgate_store_messages") == 0; }, 60s));
    HubTrafficReader reader(*rig.listener);
    const auto key_of = [](const HubMessage& m) { return m.system.message_id; };
    const auto missing = wait_for_keys(reader, acknowledged, key_of, 30s);
    const HubTraffic& traffic = reader.traffic();
    CHECK_MESSAGE(traffic.errors.empty(), first_of(traffic.errors));
    CHECK_MESSAGE(missing.empty(), missing.size() << " acknowledged messages never arrived, first " << first_of(missing));
    MESSAGE(traffic.messages.size() << " messages arrived for " << acknowledged.size() << " acknowledged: "
                                    << duplicates(traffic, key_of) << " duplicates; the gateway relayed "
                                    << rig.gw->metric("hubgate_upstream_messages_relayed_total") << " and resent "
                                    << rig.gw->metric("hubgate_upstream_resent_messages_total"));
}
