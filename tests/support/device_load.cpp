#include "tests/support/device_load.hpp"

#include <doctest/doctest.h>

#include "tests/support/hub_messages.hpp"
#include "tests/support/paho_device.hpp"

namespace hubgate::test {

std::string numbered_lines(const std::string& id, int first, int count) {
    std::string lines;
    for (int i = first; i < first + count; ++i) {
        std::string line = body_key(id, i) + ":{\"t\":21.5,\"pad\":\"";
        line.append(line.size() < 198 ? 198 - line.size() : 0, 'x');
        lines += line + "\"}\n";
    }
    return lines;
}

std::thread start_device_load(const TempDir& dir, DeviceLoad& load, std::uint16_t port, const std::string& key,
                              const std::string& topic, int chunk, std::chrono::milliseconds pause,
                              const std::atomic<bool>& stop) {
    return std::thread([&dir, &load, port, key, topic, chunk, pause, &stop] {
        for (int n = 0; !stop; ++n) {
            const int first = n * chunk;
            const auto file = dir.write("lines-" + load.id + "-" + std::to_string(n) + ".txt",
                                        numbered_lines(load.id, first, chunk));
            const auto r = mosquitto_pub_lines(port, load.id, device_token(load.id, key), topic, file);
            if (r.exit_code != 0) {
                load.failures.push_back("chunk " + std::to_string(n) + ": exit " + std::to_string(r.exit_code) +
                                        ": " + r.output.substr(0, 300));
                return;
            }
            load.acked = first + chunk;
            std::this_thread::sleep_for(pause);
        }
    });
}

std::unordered_set<std::string> acked_keys(const std::vector<DeviceLoad>& loads) {
    std::unordered_set<std::string> keys;
    for (const auto& load : loads) {
        for (const auto& failure : load.failures) FAIL_CHECK(load.id << ": " << failure);
        for (int i = 0; i < load.acked; ++i) keys.insert(body_key(load.id, i));
    }
    REQUIRE(!keys.empty());
    return keys;
}

}  // namespace hubgate::test
