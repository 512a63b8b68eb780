// A device for integration tests, on Eclipse Paho MQTT C++ (a real library client, not ours):
// connect with a SAS password, publish QoS 0/1 and wait for PUBACK, subscribe, receive C2D.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace mqtt {
class async_client;
}

namespace hubgate::test {

struct ReceivedMessage {
    std::string topic;
    std::string payload;
};

class PahoDevice {
public:
    // uri: tcp://127.0.0.1:PORT or ssl://127.0.0.1:PORT (then ca_file verifies the server).
    PahoDevice(const std::string& uri, const std::string& device_id, std::optional<std::string> password,
               std::string ca_file = {});
    ~PahoDevice();

    // Returns the CONNACK return code (0 = accepted), or -1 when no CONNACK came.
    int connect(bool clean_session = true, int keep_alive_seconds = 60);
    // CONNACK session-present of the last successful connect().
    bool session_present() const noexcept { return session_present_; }
    // QoS 1: true once the PUBACK arrived within `timeout`; false as soon as the connection is lost
    // without it. QoS 0: true once written.
    bool publish(const std::string& topic, const std::string& payload, int qos,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Returns the granted QoS (or 0x80), -1 on failure.
    int subscribe(const std::string& filter, int qos);
    bool connected() const;
    void disconnect();
    std::optional<ReceivedMessage> next_message(std::chrono::milliseconds timeout);

private:
    struct Callback;
    std::string device_id_;
    std::optional<std::string> password_;
    std::string ca_file_;
    std::unique_ptr<::mqtt::async_client> client_;
    std::unique_ptr<Callback> callback_;
    bool session_present_ = false;
};

// `SharedAccessSignature ...` for device `id` signed with `key`, valid for `ttl_seconds` (negative:
// already expired), resource `{host}/devices/{id}`.
std::string device_token(const std::string& id, const std::string& key, long ttl_seconds = 3600,
                         const std::string& host = "hubgate.test");
// IoT Hub's username for a device.
std::string device_username(const std::string& id, const std::string& host = "hubgate.test");

// Runs `mosquitto_pub -V mqttv311 -h 127.0.0.1 -p PORT -i ID [-u USERNAME -P PASSWORD] ARGS...`
// (username and password only when `password` is given). Exit code 0 = connected and published
// (QoS 1: PUBACK received); non-zero when the connection was refused or lost.
RunResult mosquitto_pub(std::uint16_t port, const std::string& device_id, const std::optional<std::string>& password,
                        std::vector<std::string> args);
// The fastest way to load a gateway: `mosquitto_pub -l -q QOS -t TOPIC` fed `lines_file` on stdin,
// one message per line (pipelined, not one round trip each). Exit code 0 once every line was sent
// (QoS 1: acknowledged).
RunResult mosquitto_pub_lines(std::uint16_t port, const std::string& device_id,
                              const std::optional<std::string>& password, const std::string& topic,
                              const std::string& lines_file, int qos = 1,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace hubgate::test
