// The hub's side of upstream tests: a Paho subscriber on the broker that collects every message the
// gateway publishes (topic + payload, binary-safe). Keeps its session and resubscribes itself across
// broker restarts, so messages sent while the broker was down and back are still seen.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/paho_device.hpp"

namespace hubgate::test {

class HubListener {
public:
    // Connects (QoS 1 subscription, clean session = 0, a unique fixed client id) and waits for the
    // SUBACK; throws std::runtime_error when the broker does not accept it.
    explicit HubListener(std::uint16_t port, std::string filter = "devices/+/messages/events/#");
    ~HubListener();
    HubListener(const HubListener&) = delete;
    HubListener& operator=(const HubListener&) = delete;

    std::size_t size() const;
    // True once at least n messages arrived within `timeout`.
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;
    std::vector<ReceivedMessage> messages() const;  // a copy, in arrival order
    // A copy of the messages from index `first` on (those that arrived after the first `first`),
    // for readers that follow a long stream without copying it all again.
    std::vector<ReceivedMessage> messages_from(std::size_t first) const;

private:
    struct State;
    std::string filter_;
    std::shared_ptr<State> state_;
    std::unique_ptr<::mqtt::async_client> client_;
};

}  // namespace hubgate::test
