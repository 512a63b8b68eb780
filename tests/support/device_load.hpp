// Sustained QoS 1 load from IoT Hub-dialect devices for the upstream fault tests (a flapping hub, a
// cluster node killed): each device runs mosquitto_pub -l over chunks of numbered ~200-byte lines
// (`{device}/{n}:...`, body_key() in hub_messages.hpp reads them back) until told to stop. A chunk
// whose mosquitto_pub exited 0 had every line acknowledged by the gateway.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

struct DeviceLoad {
    std::string id;
    std::atomic<int> acked{0};  // lines 0..acked-1 were acknowledged by the gateway
    std::vector<std::string> failures;  // read after the thread joined
};

// Lines first..first+count-1 of device `id`, each ~200 bytes, newline-terminated.
std::string numbered_lines(const std::string& id, int first, int count);

// Starts one device's load on the gateway's MQTT listener at `port` (SAS token from `key`),
// publishing to `topic` in chunks of `chunk` lines with `pause` between chunks, until `stop`. The
// first failing chunk is recorded and ends the load (which of its lines were acknowledged is
// unknown, so counting stops there).
std::thread start_device_load(const TempDir& dir, DeviceLoad& load, std::uint16_t port, const std::string& key,
                              const std::string& topic, int chunk, std::chrono::milliseconds pause,
                              const std::atomic<bool>& stop);

// After the loads joined: every key (body_key) the gateway acknowledged, across `loads`. A load's
// recorded failures fail the test (FAIL_CHECK); no acknowledged message at all fails it (REQUIRE).
std::unordered_set<std::string> acked_keys(const std::vector<DeviceLoad>& loads);

}  // namespace hubgate::test
