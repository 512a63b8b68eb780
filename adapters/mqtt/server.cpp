#include "adapters/mqtt/session_transport.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <spdlog/spdlog.h>

#include "adapters/mqtt/server_core.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/translate/translator.hpp"
#include "gateway/model/clock.hpp"

namespace hubgate::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---- metrics ----------------------------------------------------------------------------------

Counters::Counters(metrics::Registry& r)
    : registry(r),
      connections(r.gauge("hubgate_mqtt_connections", "open device connections (TCP and TLS)")),
      accepted(r.counter("hubgate_mqtt_connects_total", "CONNECTs accepted")),
      messages_qos0(r.counter("hubgate_mqtt_messages_total", "D2C messages accepted at the door", {{"qos", "0"}})),
      messages_qos1(r.counter("hubgate_mqtt_messages_total", "D2C messages accepted at the door", {{"qos", "1"}})),
      bytes_received(r.counter("hubgate_mqtt_received_bytes_total", "bytes read from device connections")),
      pubacks(r.counter("hubgate_mqtt_pubacks_total", "PUBACKs sent after the durable commit")),
      takeovers(r.counter("hubgate_mqtt_takeovers_total", "sessions closed because the same device connected again")),
      backpressure(r.counter("hubgate_mqtt_backpressure_total", "times a session paused because the store had no room")),
      accept_errors(r.counter("hubgate_mqtt_accept_errors_total", "failed accepts (EMFILE, ENFILE, ...)")),
      c2d_sent(r.counter("hubgate_mqtt_c2d_sent_total", "C2D messages published to devices")),
      c2d_acked(r.counter("hubgate_mqtt_c2d_acked_total", "C2D messages acknowledged by devices (PUBACK)")),
      keepalive_timeouts(r.counter("hubgate_mqtt_keepalive_timeouts_total", "sessions closed by keep-alive (1.5 x)")),
      token_expiries(r.counter("hubgate_mqtt_token_expiries_total", "sessions closed when their SAS token expired")),
      revoked(r.counter("hubgate_mqtt_revoked_total",
                        "sessions closed by a reload that removed their device or changed its key or module")),
      wills(r.counter("hubgate_mqtt_wills_total", "Will messages published for connections that ended without DISCONNECT")) {}

void Counters::refused_connect(const char* reason) {
    registry.counter("hubgate_mqtt_connects_refused_total", "CONNECTs refused, by reason", {{"reason", reason}}).inc();
}
void Counters::refused_message(const char* reason) {
    registry.counter("hubgate_mqtt_refused_total", "PUBLISH/SUBSCRIBE refused, by reason", {{"reason", reason}}).inc();
}
void Counters::protocol_error(const char* reason) {
    registry.counter("hubgate_mqtt_protocol_errors_total", "connections closed for a protocol error, by reason",
                     {{"reason", reason}})
        .inc();
}

// ---- shared state -----------------------------------------------------------------------------

MqttServer::Core::Core(asio::io_context& io_, ServerOptions options_, DeviceDirectory& devices_, IngestSink& ingest_,
                       metrics::Registry& registry)
    : io(io_), options(std::move(options_)), devices(devices_), ingest(ingest_), counters(registry) {}

std::int64_t MqttServer::Core::now_unix() const {
    if (options.now_unix) return options.now_unix();
    return unix_seconds();
}

void MqttServer::Core::add(const std::shared_ptr<Session>& s) { owners.emplace(s.get(), s); }

void MqttServer::Core::remove(Session* s) { owners.erase(s); }

bool MqttServer::Core::attach(const std::shared_ptr<Session>& s, bool clean_session) {
    const std::string& id = s->device_id();
    if (auto it = by_device.find(id); it != by_device.end()) {
        if (auto old = it->second.lock(); old && old.get() != s.get()) {
            counters.takeovers.inc();
            old->close("taken over: the same device connected again");  // detaches itself
        }
    }
    by_device[id] = s;
    if (clean_session) {
        persistent.erase(id);
        return false;
    }
    return !persistent.try_emplace(id).second;
}

void MqttServer::Core::detach(Session* s, bool clean_session) {
    const std::string& id = s->device_id();
    auto it = by_device.find(id);
    if (it == by_device.end() || it->second.lock().get() != s) return;  // already replaced
    by_device.erase(it);
    if (clean_session) {
        persistent.erase(id);
    } else {
        auto& p = persistent[id];
        p.c2d_subscribed = s->c2d_subscribed();
        p.filters = s->filters();
        p.twin_subs = s->twin_subs();
    }
    if (s->reachable()) set_reachable(id, false);
}

void MqttServer::Core::set_c2d_subscribed(const std::string& device, bool subscribed) {
    if (auto it = persistent.find(device); it != persistent.end()) it->second.c2d_subscribed = subscribed;
    set_reachable(device, subscribed);
}

void MqttServer::Core::set_reachable(const std::string& device, bool reachable) {
    if (!reachability) return;
    reachability(device, reachable);
    if (!options.translator) return;
    for (const std::string& child : options.translator->routed_via(device)) reachability(child, reachable);
}

std::shared_ptr<Session> MqttServer::Core::session_for(const std::string& device) const {
    if (auto it = by_device.find(device); it != by_device.end())
        if (auto s = it->second.lock(); s && !s->closed()) return s;
    if (!options.translator) return nullptr;
    const auto* route = options.translator->route_of(device);
    if (!route || route->via.empty()) return nullptr;
    if (auto it = by_device.find(route->via); it != by_device.end())
        if (auto s = it->second.lock(); s && !s->closed()) return s;
    return nullptr;
}

namespace {

void do_accept(const std::shared_ptr<MqttServer::Core>& core, std::size_t idx) {
    core->acceptors[idx]->async_accept([core, idx](const boost::system::error_code& ec, tcp::socket socket) {
        if (core->stopped) return;
        if (ec) {
            if (ec == asio::error::operation_aborted) return;
            // EMFILE/ENFILE and friends: back off and keep serving the sessions we have. While
            // descriptors stay scarce accept flaps between failing and succeeding, so the log line
            // is rate-limited (one a minute); the counter sees every failure.
            core->counters.accept_errors.inc();
            const auto now = std::chrono::steady_clock::now();
            auto& last = core->accept_error_logged_at[idx];
            if (last == std::chrono::steady_clock::time_point{} || now - last > std::chrono::minutes(1)) {
                last = now;
                spdlog::warn("mqtt listener {}: accept failed: {}; backing off (existing sessions continue)",
                             core->listeners[idx]->config.bind.to_string(), ec.message());
            }
            auto& timer = *core->accept_retry[idx];
            timer.expires_after(std::chrono::milliseconds(250));
            timer.async_wait([core, idx](const boost::system::error_code& tec) {
                if (!tec && !core->stopped) do_accept(core, idx);
            });
            return;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const ListenerContext& l = *core->listeners[idx];
        std::shared_ptr<Session> s;
        if (l.tls) s = std::make_shared<SessionOn<asio::ssl::stream<tcp::socket>>>(core, l, std::move(socket));
        else s = std::make_shared<SessionOn<tcp::socket>>(core, l, std::move(socket));
        core->add(s);
        s->start();
        do_accept(core, idx);
    });
}

Result<std::unique_ptr<asio::ssl::context>> make_tls_context(const config::Listener& l) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                         asio::ssl::context::single_dh_use,
                     ec);
    ctx->use_certificate_chain_file(l.tls_cert, ec);
    if (ec) return Error{"mqtts listener " + l.bind.to_string() + ": cannot load tls_cert " + l.tls_cert + ": " + ec.message()};
    ctx->use_private_key_file(l.tls_key, asio::ssl::context::pem, ec);
    if (ec) return Error{"mqtts listener " + l.bind.to_string() + ": cannot load tls_key " + l.tls_key + ": " + ec.message()};
    return ctx;
}

}  // namespace

// ---- MqttServer -------------------------------------------------------------------------------

MqttServer::MqttServer(asio::io_context& io, ServerOptions options, DeviceDirectory& devices, IngestSink& ingest,
                       metrics::Registry& registry)
    : core_(std::make_shared<Core>(io, std::move(options), devices, ingest, registry)) {}

MqttServer::~MqttServer() { stop(); }

Status MqttServer::start() {
    for (const auto& l : core_->options.listeners) {
        if (l.protocol != config::Protocol::mqtt && l.protocol != config::Protocol::mqtts) continue;
        auto ctx = std::make_unique<ListenerContext>();
        ctx->config = l;
        ctx->auth = l.auth == config::ListenerAuth::none       ? AuthMode::none
                    : l.auth == config::ListenerAuth::password ? AuthMode::password
                                                               : AuthMode::sas;
        if (l.protocol == config::Protocol::mqtts) {
            auto tls = make_tls_context(l);
            if (!tls) return Error{tls.error()};
            ctx->tls = std::move(tls.value());
        }
        boost::system::error_code ec;
        tcp::endpoint ep;
        const auto addr = asio::ip::make_address(l.bind.host, ec);
        if (!ec) {
            ep = tcp::endpoint(addr, l.bind.port);
        } else {
            tcp::resolver resolver(core_->io);
            auto results = resolver.resolve(l.bind.host, std::to_string(l.bind.port), ec);
            if (ec || results.empty()) return Error{"mqtt listener " + l.bind.to_string() + ": cannot resolve " + l.bind.host};
            ep = results.begin()->endpoint();
        }
        auto acc = std::make_unique<tcp::acceptor>(core_->io);
        const char* step = "socket";
        acc->open(ep.protocol(), ec);
        if (!ec) { step = "setsockopt(SO_REUSEADDR)"; acc->set_option(asio::socket_base::reuse_address(true), ec); }
        if (!ec) { step = "bind"; acc->bind(ep, ec); }
        if (!ec) { step = "listen"; acc->listen(asio::socket_base::max_listen_connections, ec); }
        if (ec) {
            std::string why = ec.message();
            if (ec == asio::error::address_in_use) why += " (another process listens there: change this listener's bind)";
            else if (ec == asio::error::access_denied) why += " (ports below 1024 need CAP_NET_BIND_SERVICE)";
            return Error{"cannot listen for " + std::string(config::to_string(l.protocol)) + " on " + l.bind.to_string() +
                         ": " + step + ": " + why};
        }
        const auto bound = acc->local_endpoint(ec);
        spdlog::info("mqtt: listening on {}:{} ({}, auth {}{})", l.bind.host, bound.port(), config::to_string(l.protocol),
                     config::to_string(l.auth), l.module_id.empty() ? "" : ", module " + l.module_id);
        core_->listeners.push_back(std::move(ctx));
        core_->acceptors.push_back(std::move(acc));
        core_->accept_retry.push_back(std::make_unique<asio::steady_timer>(core_->io));
    }
    core_->accept_error_logged_at.resize(core_->acceptors.size());
    for (std::size_t i = 0; i < core_->acceptors.size(); ++i) do_accept(core_, i);
    return std::nullopt;
}

void MqttServer::stop() {
    if (core_->stopped) return;
    core_->stopped = true;
    boost::system::error_code ignored;
    for (auto& a : core_->acceptors) a->close(ignored);
    for (auto& t : core_->accept_retry) t->cancel();
    std::vector<std::shared_ptr<Session>> live;
    for (auto& [ptr, weak] : core_->owners)
        if (auto s = weak.lock()) live.push_back(std::move(s));
    for (auto& s : live) s->close("gateway stopping");
}

void MqttServer::recheck_devices() {
    asio::post(core_->io, [core = core_] {
        std::vector<std::shared_ptr<Session>> changed;
        for (auto& [ptr, weak] : core->owners)
            if (auto s = weak.lock(); s && !s->closed() && s->credentials_changed()) changed.push_back(std::move(s));
        for (auto& s : changed) {
            core->counters.revoked.inc();
            s->close("device removed, or its key or module changed, by a reload: closing (it may connect again)");
        }
    });
}

std::vector<std::uint16_t> MqttServer::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& a : core_->acceptors) {
        boost::system::error_code ec;
        out.push_back(a->local_endpoint(ec).port());
    }
    return out;
}

std::size_t MqttServer::session_count() const { return core_->owners.size(); }

void MqttServer::deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) {
    asio::post(core_->io, [core = core_, device_id = std::move(device_id), m = std::move(m), done = std::move(done)]() mutable {
        auto s = core->session_for(device_id);
        if (!s) {
            done(DeliveryOutcome::unreachable);
            return;
        }
        s->deliver(device_id, m, std::move(done));
    });
}

void MqttServer::twin_desired(std::string device_id, std::string body, std::int64_t version) {
    asio::post(core_->io, [core = core_, device_id = std::move(device_id), body = std::move(body), version] {
        auto it = core->by_device.find(device_id);
        if (it == core->by_device.end()) return;
        if (auto s = it->second.lock()) s->send_desired(body, version);
    });
}

void MqttServer::invoke_method(std::string device_id, std::string name, std::string payload,
                               std::chrono::milliseconds timeout, std::function<void(int, std::string)> done) {
    asio::post(core_->io, [core = core_, device_id = std::move(device_id), name = std::move(name),
                           payload = std::move(payload), timeout, done = std::move(done)]() mutable {
        auto it = core->by_device.find(device_id);
        auto s = it == core->by_device.end() ? nullptr : it->second.lock();
        if (!s || s->closed()) {
            done(404, {});
            return;
        }
        s->invoke_method(name, payload, timeout, std::move(done));
    });
}

void MqttServer::set_reachability_listener(std::function<void(const std::string&, bool)> fn) {
    core_->reachability = std::move(fn);
}

}  // namespace hubgate::mqtt
