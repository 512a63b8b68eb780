#include "gateway/upstream/upstream_client.hpp"

#include <mqtt/async_client.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/model/clock.hpp"
#include "gateway/model/sas_token.hpp"
#include "gateway/upstream/reconnect_policy.hpp"

namespace hubgate::upstream {

namespace {

constexpr int kKeepAliveSeconds = 30;
constexpr int kConnectTimeoutSeconds = 10;
constexpr auto kDisconnectTimeout = std::chrono::seconds(2);
constexpr auto kSubscribeTimeout = std::chrono::seconds(5);
// How long the TCP probe after a failed ssl:// connect waits (classify_connect_failure).
constexpr auto kTlsProbeTimeout = std::chrono::milliseconds(1000);
// How long the TCP probe before an attempt waits for a hub that neither accepts nor refuses (a lost
// route): as long as Paho's own connect would.
constexpr auto kProbeTimeout = std::chrono::seconds(kConnectTimeoutSeconds);
// While the hub stays away, repeat the "cannot connect" line at most this often.
constexpr auto kOutageLogInterval = std::chrono::minutes(1);

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

using SteadyClock = std::chrono::steady_clock;

double seconds_between(SteadyClock::time_point from, SteadyClock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// Time spent disconnected while the client runs (hubgate_upstream_disconnected_seconds_total),
// including the outage under way when scraped. Shared with the registry's counter function, which may
// outlive the client.
struct DownTime {
    std::mutex mu;
    bool down = false;
    SteadyClock::time_point since;
    double total = 0;  // seconds of the outages already over

    void set(bool is_down, SteadyClock::time_point now) {
        std::lock_guard lock(mu);
        if (is_down == down) return;
        if (down) total += seconds_between(since, now);
        down = is_down;
        since = now;
    }
    double seconds() {
        std::lock_guard lock(mu);
        return total + (down ? seconds_between(since, SteadyClock::now()) : 0.0);
    }
};

// A plain TCP connect to the host:port of a tcp:// or ssl:// uri, closed at once: nullopt when the
// hub accepted it, else why not. Used twice per attempt:
// - before handing the attempt to Paho: an unreachable hub is seen in a millisecond, where Paho's
//   threads (100 ms cycles) take 100-300 ms to report a refused connect, so the schedule's retry
//   interval is the real one and the hub is found the moment it listens again;
// - after a failed ssl:// attempt: Paho reports a failed TLS handshake with the same code as a
//   refused TCP connect (-1), and its C++ ssl_options error handler cannot tell them apart for us
//   (Paho C++ 1.2 hands Paho C a pointer into the by-value connect_options of
//   async_client::connect(), gone by the time the handshake fails). A hub that accepts TCP failed
//   the handshake.
// `stop` is polled every 50 ms while waiting, so stop() is never held up for long.
std::optional<std::string> tcp_probe(const std::string& uri, std::chrono::milliseconds timeout,
                                     const std::function<bool()>& stop) {
    const auto scheme_end = uri.find("://");
    std::string rest = scheme_end == std::string::npos ? uri : uri.substr(scheme_end + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string host;
    std::string port = starts_with(uri, "ssl://") ? "8883" : "1883";
    if (!rest.empty() && rest[0] == '[') {
        const auto close = rest.find(']');
        if (close == std::string::npos) return "bad address " + rest;
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        host = rest.substr(0, colon);
        if (colon != std::string::npos) port = rest.substr(colon + 1);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return "cannot resolve " + host + ": " + ::gai_strerror(rc);
    std::string why = "no address for " + host;
    bool accepted = false;
    const auto deadline = SteadyClock::now() + timeout;
    for (addrinfo* ai = found; ai && !accepted; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int error = 0;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            accepted = true;
        } else if (errno != EINPROGRESS) {
            error = errno;
        } else {
            for (;;) {
                pollfd p{fd, POLLOUT, 0};
                const int ready = ::poll(&p, 1, 50);
                if (ready == 1) {
                    socklen_t len = sizeof error;
                    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
                    accepted = error == 0;
                    break;
                }
                if (ready < 0 && errno != EINTR) {
                    error = errno;
                    break;
                }
                if (SteadyClock::now() >= deadline || stop()) {
                    error = ETIMEDOUT;
                    break;
                }
            }
        }
        ::close(fd);
        if (!accepted) why = "TCP connect to " + rest + ": " + std::strerror(error);
    }
    ::freeaddrinfo(found);
    if (accepted) return std::nullopt;
    return why;
}

// One connect attempt's failure: what the client logs and how ReconnectPolicy treats it.
struct ConnectFailure {
    std::string reason;
    FailureKind kind = FailureKind::unreachable;
};

}  // namespace

Result<ConnectParameters> connect_parameters(const config::Upstream& upstream, std::int64_t now_unix,
                                             std::chrono::seconds sas_ttl, const std::string& gateway_id) {
    ConnectParameters p;
    p.ca_file = upstream.ca_file;
    if (upstream.profile == config::UpstreamProfile::azure_iot_hub) {
        if (!upstream.connection_string) return Error{"upstream profile azure-iot-hub needs a connection_string"};
        const ConnectionString& cs = *upstream.connection_string;
        if (cs.host_name.empty() || cs.device_id.empty() || cs.shared_access_key.empty())
            return Error{"upstream connection_string needs HostName, DeviceId and SharedAccessKey"};
        if (sas_ttl.count() <= 0) return Error{"upstream SAS token lifetime must be positive"};
        p.uri = "ssl://" + cs.host_name + ":8883";
        p.client_id = cs.device_id;
        p.username = cs.host_name + "/" + cs.device_id + "/?api-version=" + kApiVersion;
        const std::int64_t expiry = now_unix + sas_ttl.count();
        auto token = make_sas_token(cs.host_name + "/devices/" + cs.device_id, cs.shared_access_key, expiry);
        if (!token) return Error{"cannot make the upstream SAS token: " + token.error()};
        p.password = std::move(token.value());
        p.expires_at = expiry;
        return p;
    }
    if (!starts_with(upstream.url, "tcp://") && !starts_with(upstream.url, "ssl://"))
        return Error{"upstream url must start with tcp:// or ssl:// (got \"" + upstream.url + "\")"};
    p.uri = upstream.url;
    p.client_id = !upstream.client_id.empty() ? upstream.client_id
                  : !gateway_id.empty()       ? gateway_id
                                              : upstream.gateway_device_id;
    if (p.client_id.empty()) return Error{"upstream client_id is empty and no gateway id is set"};
    p.username = upstream.username;
    p.password = upstream.password;
    return p;
}

std::chrono::seconds sas_renewal_after(std::chrono::seconds sas_ttl) {
    return std::max(std::chrono::seconds(1), sas_ttl * 9 / 10);
}

struct UpstreamClient::Impl final : public mqtt::iaction_listener {
    struct Pending {
        std::function<void(bool)> done;
        std::size_t bytes = 0;
        bool counts_for_health = true;
    };
    enum class Ending { lost, renew, stop };

    ClientOptions opts;
    std::string gw;
    std::string c2d_filter;
    // The nodes tried in turn (the mqtt profile's url list; one entry otherwise) and the one in use
    // or to try next. Worker thread only.
    std::vector<std::string> nodes;
    std::size_t node = 0;
    std::vector<metrics::Gauge*> m_node_in_use;  // hubgate_upstream_node{url}: 1 while connected to it
    bool encode_dots = false;

    metrics::Gauge& m_connected;
    metrics::Counter& m_connects;
    metrics::Counter& m_connect_failures;
    metrics::Counter& m_disconnects;
    metrics::Counter& m_published_bytes;
    metrics::Counter& m_acked;
    metrics::Counter& m_failed;
    metrics::Gauge& m_backoff_ms;
    metrics::Counter* m_reconnects[2];          // by FailureKind: attempts after a failure of that kind
    metrics::Counter* m_failures_by_cause[2];   // by FailureKind: failed attempts and lost connections
    std::shared_ptr<DownTime> down_time = std::make_shared<DownTime>();

    mutable std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    std::thread worker;
    std::function<void(bool, std::uint64_t)> state_listener;
    std::vector<std::function<void(bool, std::uint64_t)>> more_state_listeners;  // add_state_listener()
    std::function<void(const std::string&, const std::string&)> message_listener;
    // Desired-property patches of the gateway's own twin (docs/twins.md): `devices/{gw}/` + IoT
    // Hub's topic on the mqtt profile, IoT Hub's own on azure-iot-hub.
    std::function<void(const std::string&)> twin_listener;
    // Answers to the gateway's own twin requests (`{topic_base}$iothub/twin/res/{status}/?$rid=R`).
    std::function<void(int, const std::string&, const std::string&)> twin_response_listener;
    std::string twin_prefix;
    // Direct methods of the gateway's identity: `{twin topic base}$iothub/methods/POST/{name}/?$rid=R`.
    std::function<void(const std::string&, const std::string&, const std::string&)> method_listener;
    std::string topic_base;  // "devices/{gw}/" on the mqtt profile, "" on azure-iot-hub
    // The client of the current connection attempt; a new one per attempt, so that publishes left
    // pending by a dropped connection die with their client instead of being resent by Paho after we
    // already told the caller they failed.
    std::shared_ptr<mqtt::async_client> client;
    std::uint64_t generation = 0;  // which client's connection-lost callback is current
    bool lost = false;
    std::string lost_cause;
    bool is_connected = false;
    std::uint64_t epoch = 0;
    std::unordered_map<std::uint64_t, Pending> pending;
    std::uint64_t next_publish_id = 1;

    // Publishes the hub acknowledged on the current connection: one makes the connection healthy.
    std::atomic<std::uint64_t> acked_on_connection{0};

    // Outage logging state (worker thread only): one line when the gateway loses the hub, one per
    // kind of failure, then at most one a kOutageLogInterval while it lasts.
    bool in_outage = false;
    std::uint64_t outage_attempts = 0;
    bool outage_kind_logged[2] = {false, false};
    SteadyClock::time_point outage_logged_at;
    SteadyClock::time_point outage_began;

    Impl(ClientOptions o, metrics::Registry& r)
        : opts(std::move(o)),
          m_connected(r.gauge("hubgate_upstream_connected", "1 while the upstream MQTT connection is up")),
          m_connects(r.counter("hubgate_upstream_connects_total", "Successful upstream connects")),
          m_connect_failures(r.counter("hubgate_upstream_connect_failures_total", "Failed upstream connect attempts")),
          m_disconnects(r.counter("hubgate_upstream_disconnects_total", "Upstream connections lost or closed")),
          m_published_bytes(r.counter("hubgate_upstream_published_bytes_total",
                                      "Payload bytes of upstream publishes the hub acknowledged")),
          m_acked(r.counter("hubgate_upstream_publishes_total", "Upstream QoS 1 publishes by outcome",
                            {{"result", "acked"}})),
          m_failed(r.counter("hubgate_upstream_publishes_total", "Upstream QoS 1 publishes by outcome",
                             {{"result", "failed"}})),
          m_backoff_ms(r.gauge("hubgate_upstream_backoff_ms",
                               "Delay before the next upstream connect attempt (0 while connected)")) {
        for (const FailureKind k : {FailureKind::unreachable, FailureKind::refused}) {
            const metrics::Labels cause{{"cause", to_string(k)}};
            m_reconnects[index(k)] = &r.counter("hubgate_upstream_reconnects_total",
                                                "Upstream reconnect attempts, by the kind of failure before them",
                                                cause);
            m_failures_by_cause[index(k)] = &r.counter(
                "hubgate_upstream_reconnect_failures_total",
                "Failed upstream connect attempts and lost connections, by cause", cause);
        }
        r.counter_fn("hubgate_upstream_disconnected_seconds_total",
                     "Seconds the upstream connection was down while the gateway ran", {},
                     [down = down_time] { return down->seconds(); });
        if (!opts.now_unix) opts.now_unix = unix_seconds;
        gw = opts.upstream.gateway_device_id;
        if (gw.empty()) {
            if (opts.upstream.profile == config::UpstreamProfile::azure_iot_hub && opts.upstream.connection_string)
                gw = opts.upstream.connection_string->device_id;
            else
                gw = opts.gateway_id;
        }
        c2d_filter = "devices/" + gw + "/messages/devicebound/#";
        topic_base = opts.upstream.profile == config::UpstreamProfile::mqtt ? "devices/" + gw + "/" : std::string();
        twin_prefix = topic_base + "$iothub/twin/PATCH/properties/desired/";
        if (opts.upstream.profile == config::UpstreamProfile::mqtt) {
            nodes = opts.upstream.urls;
            if (nodes.empty()) nodes.push_back(opts.upstream.url);
            encode_dots = opts.upstream.percent_encode_dots;
        } else {
            nodes.push_back(opts.upstream.connection_string ? "ssl://" + opts.upstream.connection_string->host_name + ":8883"
                                                            : std::string("ssl://"));
        }
        for (const auto& url : nodes)
            m_node_in_use.push_back(&r.gauge("hubgate_upstream_node",
                                             "1 for the upstream url (cluster node) the gateway is connected to",
                                             {{"url", url}}));
    }

    // RabbitMQ's MQTT plugin delivers every `.` of a topic as `/`: with percent_encode_dots the
    // gateway writes `.` as %2E (every `.` in its topics sits in a percent-encoded part: a device or
    // module id, a property bag; gateway.id is checked to hold none).
    static std::string dots_encoded(const std::string& topic) {
        std::string out;
        out.reserve(topic.size() + 16);
        for (const char c : topic) {
            if (c == '.')
                out += "%2E";
            else
                out += c;
        }
        return out;
    }

    // Publish completions, from Paho's threads (or from a client being destroyed).
    void on_success(const mqtt::token& tok) override { complete(id_of(tok), true); }
    void on_failure(const mqtt::token& tok) override { complete(id_of(tok), false); }

    static std::size_t index(FailureKind k) { return k == FailureKind::refused ? 1 : 0; }

    static std::uint64_t id_of(const mqtt::token& tok) {
        return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(tok.get_user_context()));
    }

    void complete(std::uint64_t id, bool acked) {
        Pending p;
        {
            std::lock_guard lock(mu);
            auto it = pending.find(id);
            if (it == pending.end()) return;  // already failed when its connection dropped
            p = std::move(it->second);
            pending.erase(it);
        }
        if (acked) {
            if (p.counts_for_health) acked_on_connection.fetch_add(1, std::memory_order_relaxed);
            m_acked.inc();
            m_published_bytes.inc(p.bytes);
        } else {
            m_failed.inc();
        }
        if (p.done) p.done(acked);
    }

    void fail_all_pending() {
        std::unordered_map<std::uint64_t, Pending> dropped;
        {
            std::lock_guard lock(mu);
            dropped.swap(pending);
        }
        for (auto& [id, p] : dropped) {
            m_failed.inc();
            if (p.done) p.done(false);
        }
    }

    bool publish(const std::string& topic, std::string payload, std::function<void(bool)> done, bool counts_for_health) {
        std::shared_ptr<mqtt::async_client> cli;
        std::uint64_t id = 0;
        const std::size_t bytes = payload.size();
        {
            std::lock_guard lock(mu);
            if (!is_connected || !client || pending.size() >= opts.max_inflight) return false;
            cli = client;
            id = next_publish_id++;
            pending.emplace(id, Pending{std::move(done), bytes, counts_for_health});
        }
        try {
            auto msg = mqtt::make_message(encode_dots && topic.find('.') != std::string::npos ? dots_encoded(topic) : topic,
                                          std::move(payload), 1, false);
            cli->publish(msg, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)), *this);
            return true;
        } catch (const mqtt::exception& e) {
            std::lock_guard lock(mu);
            // Not found: the connection dropped meanwhile and done(false) was already called.
            if (pending.erase(id) == 0) return true;
            spdlog::debug("upstream: publish to {} refused: {}", topic, e.what());
            return false;
        }
    }

    void notify_state(bool up, std::uint64_t ep) {
        std::function<void(bool, std::uint64_t)> listener;
        std::vector<std::function<void(bool, std::uint64_t)>> more;
        {
            std::lock_guard lock(mu);
            listener = state_listener;
            more = more_state_listeners;
        }
        if (listener) listener(up, ep);
        for (const auto& l : more) l(up, ep);
    }

    void on_message(const mqtt::const_message_ptr& msg) {
        std::function<void(const std::string&, const std::string&)> listener;
        std::function<void(const std::string&)> twins;
        std::function<void(const std::string&, const std::string&, const std::string&)> methods;
        std::function<void(int, const std::string&, const std::string&)> responses;
        {
            std::lock_guard lock(mu);
            listener = message_listener;
            twins = twin_listener;
            methods = method_listener;
            responses = twin_response_listener;
        }
        if (msg->get_topic().starts_with(twin_prefix)) {
            if (twins) twins(msg->get_payload_str());
            return;
        }
        const std::string response_prefix = topic_base + "$iothub/twin/res/";
        if (const std::string& t = msg->get_topic(); t.starts_with(response_prefix)) {
            // {status}/?$rid=R[&$version=V]
            const std::string rest = t.substr(response_prefix.size());
            int status = 0;
            for (std::size_t i = 0; i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && status < 1000; ++i)
                status = status * 10 + (rest[i] - '0');
            std::string rid;
            if (const auto at = rest.find("$rid="); at != std::string::npos) {
                const auto end = rest.find('&', at);
                rid = rest.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
            }
            if (responses) responses(status, rid, msg->get_payload_str());
            return;
        }
        const std::string method_prefix = topic_base + "$iothub/methods/POST/";
        if (const std::string& t = msg->get_topic(); t.starts_with(method_prefix)) {
            // {name}/?$rid=R
            const std::string rest = t.substr(method_prefix.size());
            const auto slash = rest.find('/');
            const auto rid_at = rest.find("$rid=");
            std::string rid;
            if (rid_at != std::string::npos) rid = rest.substr(rid_at + 5, rest.find('&', rid_at) - rid_at - 5);
            if (methods) methods(rest.substr(0, slash), rid, msg->get_payload_str());
            return;
        }
        if (listener) listener(msg->get_topic(), msg->get_payload_str());
    }

    // The gateway's desired-property patches: QoS 1 on a broker (it keeps them for the gateway's
    // session while it is away), QoS 0 on IoT Hub (its twin topics are QoS 0).
    void subscribe_twin(mqtt::async_client& cli) {
        bool twins = false, methods = false, responses = false;
        {
            std::lock_guard lock(mu);
            twins = static_cast<bool>(twin_listener);
            methods = static_cast<bool>(method_listener);
            responses = static_cast<bool>(twin_response_listener);
        }
        const int qos = opts.upstream.profile == config::UpstreamProfile::mqtt ? 1 : 0;
        // Answers are QoS 0 on both profiles: one kept for the gateway while it was away answers a
        // request of a connection that is gone.
        for (const auto& [wanted, filter, filter_qos] :
             {std::tuple{twins, twin_prefix + "#", qos}, std::tuple{methods, topic_base + "$iothub/methods/POST/#", qos},
              std::tuple{responses, topic_base + "$iothub/twin/res/#", 0}}) {
            if (!wanted) continue;
            try {
                cli.subscribe(filter, filter_qos);
            } catch (const mqtt::exception& e) {
                spdlog::warn("upstream: subscribing to {} failed: {}", filter, e.what());
            }
        }
    }

    bool is_stopping() {
        std::lock_guard lock(mu);
        return stopping;
    }

    // Sleeps for the backoff delay; false when stop() interrupted it.
    bool wait_before_retry(std::chrono::milliseconds delay) {
        std::unique_lock lock(mu);
        return !cv.wait_for(lock, delay, [&] { return stopping; });
    }

    std::string schedule_phrase(FailureKind kind) const {
        const auto cap = std::chrono::duration<double>(opts.backoff_max).count();
        if (kind == FailureKind::refused || opts.fast_retry.count() == 0)
            return fmt::format("backing off up to {:g} s", cap);
        return fmt::format("retrying every {}-{} ms for {} s of the outage, then backing off up to {:g} s",
                           opts.fast_retry_min.count(), opts.fast_retry_max.count(), opts.fast_retry.count(), cap);
    }

    // An outage begins (the first failed attempt, or the connection was lost): for logs only.
    void open_outage(SteadyClock::time_point now) {
        if (in_outage) return;
        in_outage = true;
        outage_attempts = 0;
        outage_kind_logged[0] = outage_kind_logged[1] = false;
        outage_began = now;
        outage_logged_at = now;
    }

    void note_connect_failure(const std::string& uri, const ConnectFailure& f) {
        m_connect_failures.inc();
        m_failures_by_cause[index(f.kind)]->inc();
        const auto now = SteadyClock::now();
        open_outage(now);
        ++outage_attempts;
        bool& kind_logged = outage_kind_logged[index(f.kind)];
        if (!kind_logged) {
            kind_logged = true;
            outage_logged_at = now;
            spdlog::warn("upstream: cannot connect to {}: {} ({}; {})", uri, f.reason,
                         f.kind == FailureKind::refused ? "refused by the hub" : "hub unreachable",
                         schedule_phrase(f.kind));
        } else if (now - outage_logged_at >= kOutageLogInterval) {
            outage_logged_at = now;
            spdlog::warn("upstream: still cannot connect to {} after {} attempts in {:.0f} s: {} ({})", uri,
                         outage_attempts, seconds_between(outage_began, now), f.reason, to_string(f.kind));
        }
    }

    void drop_client(std::shared_ptr<mqtt::async_client>& cli) {
        {
            std::lock_guard lock(mu);
            client.reset();
            ++generation;
        }
        // Outside the lock: destroying the client fails its pending tokens through complete().
        cli.reset();
    }

    // Connects once: the connected client, or null after a failure (described in `failure`, not yet
    // counted) or when stop() cut the attempt short (`failure` left empty).
    std::shared_ptr<mqtt::async_client> try_connect(ConnectParameters& params, std::optional<ConnectFailure>& failure) {
        // Unreachable is told at the TCP level first, without Paho (tcp_probe).
        if (auto why = tcp_probe(params.uri, kProbeTimeout, [this] { return is_stopping(); })) {
            if (!is_stopping()) failure = ConnectFailure{std::move(*why), FailureKind::unreachable};
            return nullptr;
        }
        std::shared_ptr<mqtt::async_client> cli;
        std::uint64_t gen = 0;
        try {
            cli = std::make_shared<mqtt::async_client>(params.uri, params.client_id, nullptr);
        } catch (const mqtt::exception& e) {
            failure = ConnectFailure{e.what(), FailureKind::refused};  // a url Paho cannot use
            return nullptr;
        }
        {
            std::lock_guard lock(mu);
            gen = ++generation;
            client = cli;
            lost = false;
        }
        cli->set_connection_lost_handler([this, gen](const std::string& cause) {
            std::lock_guard lock(mu);
            if (gen != generation) return;
            lost = true;
            lost_cause = cause.empty() ? "connection closed" : cause;
            cv.notify_all();
        });
        cli->set_message_callback([this](mqtt::const_message_ptr msg) { on_message(msg); });

        mqtt::connect_options co;
        co.set_mqtt_version(MQTTVERSION_3_1_1);
        co.set_clean_session(false);  // the broker keeps C2D for the gateway while it is away
        co.set_keep_alive_interval(kKeepAliveSeconds);
        co.set_connect_timeout(kConnectTimeoutSeconds);
        co.set_automatic_reconnect(false);  // ours: fresh password each time, and our schedule
        // Slack above our own limit: Paho may count a publish as in flight for a moment after its
        // completion reached us.
        co.set_max_inflight(static_cast<int>(std::min<std::size_t>(opts.max_inflight * 2 + 8, 65535)));
        if (!params.username.empty()) co.set_user_name(params.username);
        if (!params.password.empty()) co.set_password(params.password);
        const bool tls = starts_with(params.uri, "ssl://");
        if (tls) {
            mqtt::ssl_options ssl;
            if (!params.ca_file.empty()) ssl.set_trust_store(params.ca_file);
            ssl.set_enable_server_cert_auth(true);
            ssl.set_verify(true);  // host name check
            co.set_ssl(std::move(ssl));
        }

        bool stopped = false;
        try {
            auto tok = cli->connect(co);
            // Polled rather than waited on, so that stop() never waits for a connect timeout.
            while (!tok->wait_for(std::chrono::milliseconds(50))) {
                std::lock_guard lock(mu);
                if ((stopped = stopping)) break;
            }
        } catch (const mqtt::exception& e) {
            const int rc = e.get_return_code();
            // -1 from an ssl:// hub that does accept TCP: the TLS handshake (certificate, host name,
            // protocol) is what failed.
            const bool tls_failed =
                tls && rc == -1 && !tcp_probe(params.uri, kTlsProbeTimeout, [this] { return is_stopping(); });
            std::string reason = rc > 0 ? "CONNACK " + std::to_string(rc) + " (" + connack_text(rc) + ")" : e.what();
            if (tls_failed) reason += " (the hub accepts TCP: the TLS handshake failed)";
            failure = ConnectFailure{std::move(reason), classify_connect_failure(rc, tls_failed)};
        }
        if (failure || stopped) {
            drop_client(cli);
            return nullptr;
        }
        return cli;
    }

    static std::string connack_text(int rc) {
        switch (rc) {
            case 1: return "unacceptable protocol version";
            case 2: return "identifier rejected";
            case 3: return "server unavailable";
            case 4: return "bad user name or password";
            case 5: return "not authorized";
            default: return "refused";
        }
    }

    // Waits until the connection ends; says why.
    Ending wait_connection_end(std::optional<std::chrono::steady_clock::time_point> renew_at) {
        std::unique_lock lock(mu);
        for (;;) {
            if (stopping) return Ending::stop;
            if (lost) return Ending::lost;
            if (!renew_at) {
                cv.wait(lock);
                continue;
            }
            if (std::chrono::steady_clock::now() >= *renew_at) return Ending::renew;
            cv.wait_until(lock, *renew_at);
        }
    }

    ReconnectSchedule schedule() const {
        ReconnectSchedule r;
        r.fast_min = opts.fast_retry_min;
        r.fast_max = opts.fast_retry_max;
        r.fast_for = opts.fast_retry;
        r.backoff_min = opts.backoff_min;
        r.backoff_max = opts.backoff_max;
        r.stable_after = opts.stable_after;
        return r;
    }

    // Subscribes to C2D, waiting for the SUBACK at most kSubscribeTimeout, and no longer than the
    // connection lives: a hub that drops right after CONNACK must not hold up the next attempt.
    // Returns why the node did not grant it (nullopt: SUBACK arrived).
    std::optional<std::string> subscribe_c2d(mqtt::async_client& cli) {
        try {
            auto tok = cli.subscribe(c2d_filter, 1);
            const auto deadline = SteadyClock::now() + kSubscribeTimeout;
            while (!tok->wait_for(std::chrono::milliseconds(50))) {
                std::lock_guard lock(mu);
                if (lost || stopping) return std::string("connection lost before the SUBACK");
                if (SteadyClock::now() >= deadline)
                    return fmt::format("no SUBACK for {} within {} s", c2d_filter, kSubscribeTimeout.count());
            }
            return std::nullopt;
        } catch (const mqtt::exception& e) {
            return fmt::format("subscribing to {} failed: {}", c2d_filter, e.what());
        }
    }

    void show_node_in_use(std::optional<std::size_t> in_use) {
        for (std::size_t i = 0; i < m_node_in_use.size(); ++i) m_node_in_use[i]->set(in_use && *in_use == i ? 1 : 0);
    }

    // The next node of the list (failover); says so in the log when there is more than one.
    void advance_node(const char* why) {
        if (nodes.size() < 2) return;
        const std::size_t from = node;
        node = (node + 1) % nodes.size();
        spdlog::debug("upstream: {} {}; trying {} next (node {} of {})", nodes[from], why, nodes[node], node + 1,
                      nodes.size());
    }

    void set_backoff(std::chrono::milliseconds delay) { m_backoff_ms.set(static_cast<double>(delay.count())); }

    void run() {
        std::mt19937_64 rng(std::random_device{}());
        ReconnectPolicy policy(schedule());
        // The kind of the failure the next attempt follows (none before the first attempt, or after
        // a connection closed on purpose): counts the attempt in hubgate_upstream_reconnects_total.
        std::optional<FailureKind> after_failure;
        // Failover (DESIGN.md): when a node fails or a connection is lost, the next node is tried at
        // once; the schedule's delay applies only after a whole round of the list failed. A lost
        // connection that was healthy starts a new round (it counts as its first failure).
        std::size_t round_failures = 0;
        bool round_refused = false;
        down_time->set(true, SteadyClock::now());
        for (;;) {
            {
                std::lock_guard lock(mu);
                if (stopping) break;
            }
            if (after_failure) m_reconnects[index(*after_failure)]->inc();
            auto params = connect_parameters(opts.upstream, opts.now_unix(), opts.sas_ttl, opts.gateway_id);
            if (params && opts.upstream.profile == config::UpstreamProfile::mqtt) params->uri = nodes[node];
            std::shared_ptr<mqtt::async_client> cli;
            std::optional<ConnectFailure> failure;
            const auto attempt_at = SteadyClock::now();
            if (params)
                cli = try_connect(*params, failure);
            else
                failure = ConnectFailure{params.error(), FailureKind::refused};  // retrying soon cannot help
            // A node answers when CONNACK 0 and the C2D subscription's SUBACK both arrived. With one
            // url the gateway keeps a connection whose SUBACK failed (telemetry still flows); with a
            // list it moves on to a node that answers.
            bool subscribe = false;
            {
                std::lock_guard lock(mu);
                subscribe = static_cast<bool>(message_listener);
            }
            if (cli && subscribe) {
                if (auto why = subscribe_c2d(*cli)) {
                    if (nodes.size() > 1) {
                        failure = ConnectFailure{*why, FailureKind::refused};
                        try {
                            cli->disconnect(std::chrono::milliseconds(0))->wait_for(std::chrono::seconds(1));
                        } catch (const mqtt::exception&) {
                        }
                        drop_client(cli);
                    } else {
                        spdlog::warn("upstream: {}", *why);
                    }
                }
            }
            if (cli) subscribe_twin(*cli);
            if (!cli) {
                if (!failure) break;  // stop() cut the attempt short
                note_connect_failure(params ? params->uri : std::string("upstream"), *failure);
                after_failure = failure->kind;
                round_refused = round_refused || failure->kind == FailureKind::refused;
                advance_node("does not answer");
                if (++round_failures < nodes.size()) {
                    policy.begin_outage(SteadyClock::now());
                    set_backoff(std::chrono::milliseconds(0));
                    continue;  // the next node at once
                }
                const FailureKind round_kind = round_refused ? FailureKind::refused : failure->kind;
                round_failures = 0;
                round_refused = false;
                const auto delay = policy.on_failure(round_kind, SteadyClock::now(), rng);
                spdlog::debug("upstream: attempt failed after {:.0f} ms: {} ({}); next in {} ms ({} s into the outage)",
                              seconds_between(attempt_at, SteadyClock::now()) * 1000, failure->reason,
                              to_string(failure->kind), delay.count(),
                              std::chrono::duration_cast<std::chrono::seconds>(policy.into_outage(SteadyClock::now()))
                                  .count());
                set_backoff(delay);
                if (!wait_before_retry(delay)) break;
                continue;
            }

            const auto connected_at = SteadyClock::now();
            spdlog::debug("upstream: connected {:.0f} ms after the attempt began", seconds_between(attempt_at, connected_at) * 1000);
            std::uint64_t ep = 0;
            acked_on_connection.store(0, std::memory_order_relaxed);
            {
                std::lock_guard lock(mu);
                is_connected = true;
                ep = ++epoch;
            }
            m_connects.inc();
            m_connected.set(1);
            show_node_in_use(node);
            set_backoff(std::chrono::milliseconds(0));
            down_time->set(false, SteadyClock::now());
            if (in_outage)
                spdlog::info("upstream: connected to {} as {} after {} failed attempts, {:.1f} s without the hub "
                             "(epoch {})",
                             params->uri, params->client_id, outage_attempts, seconds_between(outage_began, connected_at),
                             ep);
            else
                spdlog::info("upstream: connected to {} as {} (epoch {})", params->uri, params->client_id, ep);
            if (nodes.size() > 1) spdlog::info("upstream: using node {} of {} ({})", node + 1, nodes.size(), nodes[node]);
            in_outage = false;
            outage_attempts = 0;
            notify_state(true, ep);

            std::optional<SteadyClock::time_point> renew_at;
            if (params->expires_at) renew_at = connected_at + sas_renewal_after(opts.sas_ttl);
            const Ending ending = wait_connection_end(renew_at);
            std::string cause;
            {
                std::lock_guard lock(mu);
                is_connected = false;
                cause = lost_cause;
            }
            const auto ended_at = SteadyClock::now();
            m_connected.set(0);
            show_node_in_use(std::nullopt);
            m_disconnects.inc();
            down_time->set(true, ended_at);
            if (ending != Ending::lost) {
                // A clean DISCONNECT after the in-flight publishes had a moment to be acknowledged.
                try {
                    cli->disconnect(kDisconnectTimeout)->wait_for(kDisconnectTimeout + std::chrono::seconds(1));
                } catch (const mqtt::exception&) {
                }
            }
            const auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(ended_at - connected_at);
            const bool healthy = policy.connection_ended(lasted, acked_on_connection.load(std::memory_order_relaxed));
            switch (ending) {
                case Ending::lost:
                    m_failures_by_cause[index(FailureKind::unreachable)]->inc();
                    open_outage(ended_at);
                    outage_kind_logged[index(FailureKind::unreachable)] = true;
                    if (healthy)
                        spdlog::warn("upstream: connection to {} lost: {} (hub unreachable; {})", params->uri, cause,
                                     schedule_phrase(FailureKind::unreachable));
                    else
                        spdlog::warn("upstream: connection to {} lost after {} ms without an acknowledged publish: "
                                     "{} (the outage's reconnect schedule continues)",
                                     params->uri, lasted.count(), cause);
                    break;
                case Ending::renew:
                    spdlog::info("upstream: reconnecting to renew the SAS token");
                    break;
                case Ending::stop:
                    spdlog::info("upstream: disconnected from {}", params->uri);
                    break;
            }
            fail_all_pending();
            notify_state(false, ep);
            drop_client(cli);
            if (ending == Ending::stop) break;
            if (ending == Ending::renew) {
                after_failure.reset();
                policy.reset();
                round_failures = 0;
                round_refused = false;
                continue;  // the same node
            }
            after_failure = FailureKind::unreachable;
            // The lost node is tried again last in the round; one that died young (not healthy) adds
            // to the round it was part of, so nodes that accept and drop at once still back off.
            round_failures = healthy ? 1 : round_failures + 1;
            if (healthy) round_refused = false;
            advance_node("was lost");
            if (nodes.size() > 1)
                spdlog::info("upstream: failing over to {} (node {} of {})", nodes[node], node + 1, nodes.size());
            if (round_failures < nodes.size()) {
                policy.begin_outage(ended_at);
                set_backoff(std::chrono::milliseconds(0));
                continue;  // the next node at once
            }
            const FailureKind round_kind = round_refused ? FailureKind::refused : FailureKind::unreachable;
            round_failures = 0;
            round_refused = false;
            const auto delay = policy.on_failure(round_kind, ended_at, rng);
            set_backoff(delay);
            if (!wait_before_retry(delay)) break;
        }
        set_backoff(std::chrono::milliseconds(0));
        down_time->set(false, SteadyClock::now());  // not running: no longer counted as disconnected
    }
};

UpstreamClient::UpstreamClient(ClientOptions options, metrics::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(options), registry)) {}

UpstreamClient::~UpstreamClient() { stop(); }

void UpstreamClient::start() {
    std::lock_guard lock(impl_->mu);
    if (impl_->worker.joinable()) return;
    impl_->stopping = false;
    impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

void UpstreamClient::stop() {
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->worker.joinable()) return;
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->worker.join();
}

void UpstreamClient::set_state_listener(std::function<void(bool connected, std::uint64_t epoch)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->state_listener = std::move(listener);
}

bool UpstreamClient::connected() const {
    std::lock_guard lock(impl_->mu);
    return impl_->is_connected;
}

std::uint64_t UpstreamClient::epoch() const {
    std::lock_guard lock(impl_->mu);
    return impl_->epoch;
}

const std::string& UpstreamClient::gateway_device_id() const { return impl_->gw; }

bool UpstreamClient::publish(const std::string& topic, std::string payload, std::function<void(bool acked)> done,
                             bool counts_for_health) {
    return impl_->publish(topic, std::move(payload), std::move(done), counts_for_health);
}

void UpstreamClient::add_state_listener(std::function<void(bool connected, std::uint64_t epoch)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->more_state_listeners.push_back(std::move(listener));
}

void UpstreamClient::set_twin_response_listener(
    std::function<void(int status, const std::string& rid, const std::string& body)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->twin_response_listener = std::move(listener);
}

void UpstreamClient::set_twin_listener(std::function<void(const std::string& body)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->twin_listener = std::move(listener);
}

void UpstreamClient::set_method_listener(
    std::function<void(const std::string& name, const std::string& rid, const std::string& body)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->method_listener = std::move(listener);
}

const std::string& UpstreamClient::topic_base() const { return impl_->topic_base; }

void UpstreamClient::set_message_listener(
    std::function<void(const std::string& topic, const std::string& payload)> listener) {
    std::shared_ptr<mqtt::async_client> cli;
    {
        std::lock_guard lock(impl_->mu);
        const bool first = !impl_->message_listener && listener;
        impl_->message_listener = std::move(listener);
        if (first && impl_->is_connected) cli = impl_->client;
    }
    // Already connected: subscribe now rather than at the next connect.
    if (cli) {
        try {
            cli->subscribe(impl_->c2d_filter, 1);
        } catch (const mqtt::exception& e) {
            spdlog::warn("upstream: subscribing to {} failed: {}", impl_->c2d_filter, e.what());
        }
    }
}

}  // namespace hubgate::upstream
