// The hub's side of the relay integration tests: a rig (mosquitto as the hub, a listener on it, a
// gateway relaying to it), and decoding of what the hub received (batched and unbatched) back into hub
// messages, with every upstream PUBLISH sized by IoT Hub's rule independently of the relay's code.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/model/hub_message.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_listener.hpp"
#include "tests/support/mosquitto.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

struct RelayedMessage {
    // device_id, module_id, system, properties and body as relayed; enqueued_ms is left 0.
    HubMessage message;
    std::size_t publish = 0;  // index into HubTraffic::publishes of the PUBLISH that carried it
};

struct UpstreamPublish {
    std::string gateway_id;     // {gw} of devices/{gw}/messages/events/{bag}
    bool batch = false;         // its bag names the batch content type
    std::size_t messages = 0;   // hub messages it carried
    std::size_t hub_size = 0;   // by IoT Hub's rule (publish_hub_size)
};

struct HubTraffic {
    std::vector<RelayedMessage> messages;    // in arrival order
    std::vector<UpstreamPublish> publishes;  // in arrival order
    std::vector<std::string> errors;         // publishes that could not be decoded, and why
};

// Decodes every received publish: a batch (bag `$.ct` = the batch content type) element by element
// (base64 bodies decoded), anything else as one unbatched message whose `device-id` / `module-id`
// application properties name its origin (and are not kept as application properties).
HubTraffic decode_hub_traffic(const std::vector<ReceivedMessage>& received);
// The same for publishes that arrived after those already in `traffic`, appended to it.
void append_hub_traffic(HubTraffic& traffic, const std::vector<ReceivedMessage>& more);

// How many times each key arrived, `key_of` naming a relayed message (its id, or a marker the test
// wrote into its body when the gateway gave the ids).
std::map<std::string, std::size_t> count_arrivals(const HubTraffic& traffic,
                                                  const std::function<std::string(const HubMessage&)>& key_of);

// The `{device}/{n}` key RelayRig::publish_lines wrote at the start of a body.
std::string body_key(const HubMessage& m);
inline std::string body_key(const std::string& device_id, int n) { return device_id + "/" + std::to_string(n); }

// Follows a HubListener, decoding only what is new on each poll (a drain of 50 000 messages is
// re-read once, not once per poll).
class HubTrafficReader {
public:
    explicit HubTrafficReader(const HubListener& listener) : listener_(listener) {}
    // Decodes what arrived since the last call.
    const HubTraffic& update();
    // Polls until at least `n` hub messages were decoded (true) or `timeout` passed (false).
    bool wait_for_messages(std::size_t n, std::chrono::milliseconds timeout);
    const HubTraffic& traffic() const noexcept { return traffic_; }

private:
    const HubListener& listener_;
    HubTraffic traffic_;
};

// IoT Hub's size of one PUBLISH: payload bytes + the topic bag's system property values + its
// application property names and values. Throws std::runtime_error when the topic has no valid bag.
std::size_t publish_hub_size(const ReceivedMessage& publish);

// A hub (mosquitto on a free loopback port, started) with a HubListener on it, and a `hubgate run`
// relaying to it (mqtt profile, [gateway] id "gw-test") with one SAS listener (module "edge") and
// static devices that all share `key`. Throws std::runtime_error when the gateway does not come up.
struct RelayRig {
    RelayRig(bool batch, const std::vector<std::string>& device_ids, const std::string& key);

    std::string device_uri() const { return "tcp://127.0.0.1:" + std::to_string(device_port); }

    // Loads the gateway fast: every device runs `mosquitto_pub -l` (QoS 1, in parallel) on a file of
    // `per_device` ~200-byte lines. All lines share one topic, so the gateway gives the message ids;
    // each body starts with its own key `{device}/{n}:` (read back with body_key). Returns "" once
    // every line was acknowledged, otherwise the failing clients' output.
    std::string publish_lines(const std::vector<std::string>& device_ids, int per_device, const std::string& key);

    TempDir dir;
    Mosquitto hub{dir};
    std::unique_ptr<HubListener> listener;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t device_port = free_tcp_port();
    std::unique_ptr<Gateway> gw;
};

}  // namespace hubgate::test
