// The hub's side of the C2D tests: one cloud-to-device message as the hub publishes it to the
// gateway (devices/{gw}/messages/devicebound/{bag}), and the feedback records the gateway reports
// back, decoded from what the hub received. Shared by the MQTT and CoAP C2D tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/hub_messages.hpp"

namespace hubgate::test {

// Written out here rather than taken from gateway/c2d: the tests check the contract, not the code.
inline constexpr const char* kFeedbackContentType = "application/vnd.microsoft.iothub.feedback.json";

// ISO-8601 UTC, whole seconds: what a hub puts in $.exp.
std::string iso8601_in(std::chrono::seconds from_now);

// One C2D message as the hub sends it.
struct C2dSend {
    C2dSend(std::string id, std::string target, std::string ack_mode = "full")
        : message_id(std::move(id)), device(std::move(target)), ack(std::move(ack_mode)) {}
    C2dSend& with_body(std::string b) { body = std::move(b); return *this; }
    C2dSend& with_correlation_id(std::string c) { correlation_id = std::move(c); return *this; }
    C2dSend& with_expiry(std::string e) { expiry = std::move(e); return *this; }
    C2dSend& with_property(std::string k, std::string v) { properties.emplace_back(std::move(k), std::move(v)); return *this; }

    std::string message_id;
    std::string device;  // the device-id application property ("" = none)
    std::string ack;     // iothub-ack ("" = none given)
    std::string body = "c2d body";
    std::string correlation_id;
    std::string expiry;  // $.exp ("" = the gateway's default TTL)
    std::vector<std::pair<std::string, std::string>> properties;
};

// The topic the hub publishes `s` on to gateway `gateway_id`.
std::string c2d_topic(const C2dSend& s, const std::string& gateway_id = "gw-test");

// Publishes `s` on the hub broker at `hub_port` as the hub does (QoS 1, acknowledged before this
// returns, so sends reach the gateway in order). mosquitto_pub rather than a second Paho client in
// the test process: Paho C (1.3 in bookworm) needs ~2 s to connect a client while another one is
// connected. Fails the test when the broker does not take it.
void hub_send_c2d(std::uint16_t hub_port, const C2dSend& s, const std::string& gateway_id = "gw-test");

struct Feedback {
    std::string original_message_id;
    std::string device_id;
    std::string status;
    std::string description;
    std::string enqueued_time;
};

// Every feedback record in what the hub received so far, in arrival order. A feedback message that
// does not follow the contract fails the test.
std::vector<Feedback> feedback_in(const HubTraffic& traffic);

// Polls the hub's traffic until a feedback record for `message_id` with `status` arrived.
std::optional<Feedback> wait_feedback(HubTrafficReader& reader, const std::string& message_id,
                                      const std::string& status, std::chrono::milliseconds timeout);

// The hub's side of a C2D test rig, a base for the MQTT and CoAP ones: a hub (mosquitto on a free
// loopback port, started) with a HubListener on it. start_gateway() runs a `hubgate run` relaying
// to it (mqtt profile, gateway "gw-test", `extra` TOML appended) and returns once it is ready.
struct C2dHub {
    C2dHub();
    void start_gateway(const std::string& extra);
    // Serving, and subscribed upstream: the gateway subscribes to its C2D topic before it reports the
    // upstream as connected, and a message the hub sent before that would find no subscriber.
    void wait_ready_and_upstream();

    void send(const C2dSend& s) const { hub_send_c2d(hub.port(), s); }
    // hubgate_c2d_messages_total{event="..."}
    double c2d_metric(const std::string& event);
    std::optional<Feedback> wait_feedback(const std::string& message_id, const std::string& status,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return test::wait_feedback(*reader, message_id, status, timeout);
    }

    TempDir dir;
    Mosquitto hub{dir};
    std::unique_ptr<HubListener> listener;
    std::uint16_t metrics_port = free_tcp_port();
    std::unique_ptr<Gateway> gw;
    std::unique_ptr<HubTrafficReader> reader;
};

}  // namespace hubgate::test
