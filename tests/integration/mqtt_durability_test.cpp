// PUBACK means durable: devices publish QoS 1 while the gateway is SIGKILLed at a random moment;
// every message a device saw acknowledged must be in the store after the crash.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
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
constexpr int kDevices = 10;
constexpr int kRounds = 3;

// Acknowledged message ids, shared by the publishing threads.
struct AckLog {
    std::mutex mu;
    std::vector<std::string> ids;
    std::atomic<std::size_t> count{0};

    void add(std::string id) {
        std::lock_guard lock(mu);
        ids.push_back(std::move(id));
        count = ids.size();
    }
};

// One device publishing QoS 1 until a publish fails (the gateway is gone) or `stop` is set.
void publish_until_failure(const std::string& uri, int device, int round, AckLog& log, std::atomic<bool>& stop,
                           std::atomic<int>& connect_failures) {
    const std::string id = "dev-" + std::to_string(device);
    PahoDevice dev(uri, id, device_token(id, kKey));
    if (dev.connect() != 0) {
        ++connect_failures;
        return;
    }
    for (int n = 0; !stop; ++n) {
        const std::string mid = "r" + std::to_string(round) + "-" + id + "-" + std::to_string(n);
        if (!dev.publish("devices/" + id + "/messages/events/%24.mid=" + mid, "durable " + mid, 1, 3s)) return;
        log.add(mid);
    }
}

// Publishes, kills the gateway at random moments and checks every acknowledged id is in the store.
void kill_rounds(const std::string& store_extra) {
    TempDir dir;
    const auto metrics_port = free_tcp_port();
    const auto port = free_tcp_port();
    std::string extra = listener_toml("mqtt", port);
    for (int i = 0; i < kDevices; ++i) extra += device_toml("dev-" + std::to_string(i), kKey);
    Gateway gw(dir, minimal_config(dir, metrics_port, extra, store_extra), metrics_port);
    const std::string uri = "tcp://127.0.0.1:" + std::to_string(port);

    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<std::size_t> kill_after(200, 800);
    AckLog log;  // across rounds: what was acknowledged before an earlier crash must survive the later ones
    for (int round = 0; round < kRounds; ++round) {
        CAPTURE(round);
        REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
        std::atomic<bool> stop{false};
        std::atomic<int> connect_failures{0};
        std::vector<std::thread> devices;
        for (int i = 0; i < kDevices; ++i)
            devices.emplace_back(publish_until_failure, uri, i, round, std::ref(log), std::ref(stop),
                                 std::ref(connect_failures));

        const std::size_t target = log.count + kill_after(rng);
        CAPTURE(target);
        const bool reached = eventually([&] { return log.count >= target || connect_failures > 0; }, 60s);
        gw.kill();
        stop = true;
        for (auto& t : devices) t.join();
        REQUIRE(reached);
        REQUIRE(connect_failures == 0);

        const auto counts = count_by_message_id(stored_messages(dir.file("hubgate.db")));
        std::size_t missing = 0;
        std::string first_missing;
        {
            std::lock_guard lock(log.mu);
            for (const auto& mid : log.ids) {
                if (counts.count(mid) != 0) continue;
                if (missing++ == 0) first_missing = mid;
            }
            CAPTURE(log.ids.size());
            CHECK_MESSAGE(missing == 0, "first acknowledged id not in the store: " << first_missing);
        }
        gw.start();
    }
}

}  // namespace

TEST_CASE("after a SIGKILL while 10 devices publish QoS 1, every PUBACKed message is in the store (3 random kills)") {
    kill_rounds("commit_window_ms = 0\n");
}

// With the commit window a PUBACK waits for the group's commit: killed at any moment, the gateway
// must not have acknowledged a message its group had not yet committed.
TEST_CASE("with a 100 ms commit window, every PUBACKed message survives a SIGKILL (3 random kills)") {
    kill_rounds("commit_window_ms = 100\n");
}
