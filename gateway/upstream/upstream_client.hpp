// The gateway's one MQTT connection to the hub (Paho MQTT C++ behind a pimpl): connects with a fresh
// SAS token or the mqtt profile's credentials, reconnects on ReconnectPolicy's schedule (fast while
// the hub is unreachable, backing off when it refuses), publishes QoS 1.
// Used by the D2C relay thread and the C2D relay; the connect-parameter derivation is pure and tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "gateway/model/result.hpp"

namespace hubgate::metrics {
class Registry;
}

namespace hubgate::upstream {

// IoT Hub's MQTT username carries the API version the gateway speaks.
inline constexpr const char* kApiVersion = "2021-04-12";

// What one CONNECT uses. Made fresh for every attempt (the SAS token's expiry moves with `now`).
struct ConnectParameters {
    std::string uri;        // ssl://{HostName}:8883, or the mqtt profile's url
    std::string client_id;  // DeviceId, or the mqtt profile's client_id (default: gateway id)
    std::string username;   // may be empty (mqtt profile without credentials)
    std::string password;   // SAS token (azure-iot-hub), may be empty
    std::string ca_file;    // empty: the system trust store (ssl:// only)
    std::optional<std::int64_t> expires_at;  // SAS expiry (Unix seconds); reconnect before it
};

// azure-iot-hub: username `{HostName}/{DeviceId}/?api-version=...`, password a SAS token for
// `{HostName}/devices/{DeviceId}` valid until now_unix + sas_ttl. mqtt: the configured values, the
// client id falling back to `gateway_id`. Fails with a reason when the config cannot yield a CONNECT.
Result<ConnectParameters> connect_parameters(const config::Upstream& upstream, std::int64_t now_unix,
                                             std::chrono::seconds sas_ttl = std::chrono::seconds(3600),
                                             const std::string& gateway_id = {});

// How long a connection may stay up before its SAS token is renewed by reconnecting: ~90% of the
// token's lifetime, so a slow reconnect still finishes before the hub would close the session.
std::chrono::seconds sas_renewal_after(std::chrono::seconds sas_ttl);

// The reconnect schedule (ReconnectPolicy, docs/upstream.md): while the hub is unreachable, retry
// every fast_retry_min..fast_retry_max for the first fast_retry of the outage, then (and at once for a
// hub that refuses) back off exponentially from backoff_min to backoff_max, with jitter.
struct ClientOptions {
    config::Upstream upstream;
    std::string gateway_id;  // [gateway] id
    std::chrono::milliseconds backoff_min{1000};   // the first backoff step
    std::chrono::milliseconds backoff_max{10000};  // [upstream] backoff_max_ms: every delay's cap
    std::chrono::seconds fast_retry{30};           // [upstream] fast_retry_seconds
    std::chrono::milliseconds fast_retry_min{150}, fast_retry_max{400};
    std::chrono::seconds sas_ttl{3600};
    std::size_t max_inflight = 16;
    std::function<std::int64_t()> now_unix{};  // empty: the system clock
    // A connection that carried acknowledged publishes or lasted this long counts as healthy: the
    // backoff starts from backoff_min again and the next loss opens a new outage (new fast window).
    std::chrono::milliseconds stable_after{10000};
};

class UpstreamClient {
public:
    UpstreamClient(ClientOptions options, metrics::Registry& registry);
    ~UpstreamClient();  // stops
    UpstreamClient(const UpstreamClient&) = delete;
    UpstreamClient& operator=(const UpstreamClient&) = delete;

    // Begins connecting in the background (its own thread; retries until stop()).
    void start();
    // Disconnects cleanly (waits at most a few seconds). Publishes still pending get done(false).
    void stop();

    // Called on every state change from the client's own thread: true once CONNACK arrived, false
    // when the connection is lost or closed. `epoch` increments on every successful connect (1 first).
    // Set before start().
    void set_state_listener(std::function<void(bool connected, std::uint64_t epoch)> listener);
    // Another listener of the same changes, called after the one above (set before start()).
    void add_state_listener(std::function<void(bool connected, std::uint64_t epoch)> listener);
    bool connected() const;
    std::uint64_t epoch() const;
    const std::string& gateway_device_id() const;  // {gw}

    // QoS 1 publish. done(true) on the hub's PUBACK, done(false) if the publish failed or the
    // connection dropped first (the caller resends); called exactly once, from a Paho or the
    // client's thread, never from inside publish(). Thread-safe. Returns false at once (done not
    // called) when not connected, when max_inflight publishes are pending, or when Paho refuses it.
    // counts_for_health = false for a request sent on every connect (the twin GET): its PUBACK says
    // nothing about a hub that accepts and drops, so it does not make the connection healthy
    // (ReconnectPolicy) as acknowledged messages do.
    bool publish(const std::string& topic, std::string payload, std::function<void(bool acked)> done,
                 bool counts_for_health = true);

    // C2D: once set, every connect subscribes QoS 1 to `devices/{gw}/messages/devicebound/#` and
    // messages go to the listener (Paho's thread; the PUBACK goes out when it returns, so store the
    // message before returning). Set before start(): a broker delivers a session's queued messages
    // right after CONNACK, and without a listener they would be acknowledged and lost.
    void set_message_listener(std::function<void(const std::string& topic, const std::string& payload)> listener);
    // Device twins (docs/twins.md): once set (before start()), every connect also subscribes to the
    // gateway's own desired-property patches (`devices/{gw}/$iothub/twin/PATCH/properties/desired/#`
    // on the mqtt profile, IoT Hub's `$iothub/twin/PATCH/properties/desired/#` on azure-iot-hub) and
    // their bodies go to the listener (Paho's thread) instead of the message listener.
    void set_twin_listener(std::function<void(const std::string& body)> listener);
    // Answers to the gateway's own twin requests (docs/twins.md): once set (before start()), every
    // connect also subscribes (QoS 0) to `{topic_base}$iothub/twin/res/#`; each answer goes to the
    // listener (Paho's thread) with its status and `$rid`. Send requests with publish() on
    // `{topic_base}$iothub/twin/GET/?$rid=R` or `.../PATCH/properties/reported/?$rid=R`.
    void set_twin_response_listener(
        std::function<void(int status, const std::string& rid, const std::string& body)> listener);
    // Direct methods of the gateway's identity (docs/twins.md): once set (before start()), every
    // connect subscribes to `{topic_base}$iothub/methods/POST/#`; requests go to the listener (Paho's
    // thread). Answer with publish() on `{topic_base}$iothub/methods/res/{status}/?$rid=R`.
    void set_method_listener(
        std::function<void(const std::string& name, const std::string& rid, const std::string& body)> listener);
    // "devices/{gw}/" on the mqtt profile (a plain broker carries no identity), "" on azure-iot-hub.
    const std::string& topic_base() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::upstream
