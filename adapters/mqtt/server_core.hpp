// Internal to adapters/mqtt: the state every session of one MqttServer shares (device -> live
// session, persistent sessions for clean_session = 0, metrics, options). Lives on the io thread.
#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "adapters/mqtt/auth.hpp"
#include "adapters/mqtt/mqtt_server.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/model/message_id.hpp"

namespace hubgate::mqtt {

class Session;

// One configured listener's settings as sessions need them.
struct ListenerContext {
    config::Listener config;
    AuthMode auth = AuthMode::sas;
    std::unique_ptr<boost::asio::ssl::context> tls;  // set for mqtts
};

struct GrantedFilter {
    std::string filter;
    std::uint8_t qos = 0;
};

// What survives a disconnect for a device that connected with clean_session = 0.
struct PersistentSession {
    bool c2d_subscribed = false;
    std::vector<GrantedFilter> filters;  // granted on a rule listener
    unsigned twin_subs = 0;              // IoT Hub's twin and method filters (TwinFilterBit)
};

struct Counters {
    explicit Counters(metrics::Registry& r);
    metrics::Registry& registry;
    metrics::Gauge& connections;
    metrics::Counter& accepted;
    metrics::Counter& messages_qos0;
    metrics::Counter& messages_qos1;
    metrics::Counter& bytes_received;
    metrics::Counter& pubacks;
    metrics::Counter& takeovers;
    metrics::Counter& backpressure;
    metrics::Counter& accept_errors;
    metrics::Counter& c2d_sent;
    metrics::Counter& c2d_acked;
    metrics::Counter& keepalive_timeouts;
    metrics::Counter& token_expiries;
    metrics::Counter& revoked;
    metrics::Counter& wills;
    // Refusals are rare: looked up by label when they happen.
    void refused_connect(const char* reason);
    void refused_message(const char* reason);
    void protocol_error(const char* reason);
};

struct MqttServer::Core : std::enable_shared_from_this<MqttServer::Core> {
    Core(boost::asio::io_context& io, ServerOptions options, DeviceDirectory& devices, IngestSink& ingest,
         metrics::Registry& registry);

    std::int64_t now_unix() const;

    // Session bookkeeping (io thread only).
    void add(const std::shared_ptr<Session>& s);
    void remove(Session* s);
    // Registers `s` as the live session of its device, closing an older one (IoT Hub behaviour).
    // Returns whether a persistent session existed (CONNACK session-present).
    bool attach(const std::shared_ptr<Session>& s, bool clean_session);
    void detach(Session* s, bool clean_session);
    void set_c2d_subscribed(const std::string& device, bool subscribed);
    // Tells the C2D relay that `device` (and the children whose messages came through it) can or
    // can no longer be reached.
    void set_reachable(const std::string& device, bool reachable);
    // The live session that carries C2D for `device`: its own, else its bridge's (from the route
    // of its last translated message); null when neither is connected.
    std::shared_ptr<Session> session_for(const std::string& device) const;

    boost::asio::io_context& io;
    ServerOptions options;
    DeviceDirectory& devices;
    IngestSink& ingest;
    Counters counters;
    MessageIdGenerator ids;

    std::vector<std::unique_ptr<ListenerContext>> listeners;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors;
    std::vector<std::unique_ptr<boost::asio::steady_timer>> accept_retry;
    std::vector<std::chrono::steady_clock::time_point> accept_error_logged_at;
    std::unordered_set<Session*> all;
    std::unordered_map<Session*, std::weak_ptr<Session>> owners;
    std::unordered_map<std::string, std::weak_ptr<Session>> by_device;
    std::unordered_map<std::string, PersistentSession> persistent;
    std::function<void(const std::string&, bool)> reachability;
    bool stopped = false;
};

}  // namespace hubgate::mqtt
