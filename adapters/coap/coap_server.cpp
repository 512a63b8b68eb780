// libcoap context, the telemetry, C2D (devicebound) and twin handlers, the duplicate-request cache and the Asio integration
// (libcoap's epoll fd waited on by a stream_descriptor, its timeouts by a steady_timer).
#include "adapters/coap/coap_server.hpp"

#include <coap3/coap.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <spdlog/spdlog.h>
#include <string>
#include <utility>
#include <variant>

#include "adapters/coap/coap_paths.hpp"
#include "adapters/coap/dedup_cache.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/model/crypto.hpp"
#include "gateway/pairing/pairing.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/model/message_id.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/pipeline/ingest.hpp"
#include "gateway/pipeline/twins.hpp"
#include "gateway/model/clock.hpp"
#include "gateway/translate/translator.hpp"

namespace hubgate::coap {

namespace {

namespace asio = boost::asio;

void log_from_libcoap(coap_log_t level, const char* message) {
    std::string_view text(message);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    const auto lvl = level <= LOG_ERR ? spdlog::level::err : level == LOG_WARNING ? spdlog::level::warn
                     : level <= LOG_INFO                                         ? spdlog::level::info
                                                                                 : spdlog::level::debug;
    // HUBGATE_COAP_DEBUG=1 turns on libcoap's own debug log, shown at info (troubleshooting only).
    static const bool debug = std::getenv("HUBGATE_COAP_DEBUG") != nullptr;
    spdlog::log(debug ? spdlog::level::info : lvl, "coap: libcoap: {}", text);
}

void startup_libcoap() {
    static std::once_flag once;
    std::call_once(once, [] {
        coap_startup();
        coap_set_log_handler(&log_from_libcoap);
        coap_set_log_level(std::getenv("HUBGATE_COAP_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        coap_dtls_set_log_level(LOG_ERR);
    });
}

std::string code_text(std::uint8_t cls, std::uint8_t detail) {
    return std::to_string(cls) + "." + (detail < 10 ? "0" : "") + std::to_string(detail);
}

// The port an endpoint bound to: libcoap 4.3 has no getter, but coap_endpoint_str() prints the
// address it read back with getsockname() after binding ("127.0.0.1:5683 UDP", "[::1]:5684 DTLS").
std::optional<std::uint16_t> bound_port(const coap_endpoint_t* ep) {
    const char* text = coap_endpoint_str(ep);
    if (!text) return std::nullopt;
    std::string_view s(text);
    s = s.substr(0, s.find(' '));
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    unsigned value = 0;
    const auto digits = s.substr(colon + 1);
    if (digits.empty() || digits.size() > 5) return std::nullopt;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

// Why binding UDP `addr` fails, for a message that names the real cause: libcoap only logs it. The
// same bind is tried on a plain socket (errno 0 if it now succeeds).
int udp_bind_errno(const sockaddr* addr, socklen_t len) {
    const int s = ::socket(addr->sa_family, SOCK_DGRAM, 0);
    if (s < 0) return errno;
    const int err = ::bind(s, addr, len) == 0 ? 0 : errno;
    ::close(s);
    return err;
}

std::string bind_failure(const std::string& where, int err) {
    std::string why = err ? std::strerror(err) : std::string("libcoap refused the endpoint");
    if (err == EADDRINUSE) why += " (another process holds the port: change this listener's bind)";
    else if (err == EACCES) why += " (ports below 1024 need CAP_NET_BIND_SERVICE)";
    return "cannot listen for " + where + ": bind: " + why;
}

// One accepted request whose commit is in flight; the async re-invocation answers from it.
// Elective option (experimental-use range, RFC 7252 §12.2) carrying a C2D message's properties.
constexpr std::uint16_t kPropertiesOption = 65000;
// How long a GET that made its device reachable waits for the relay's first message.
constexpr int kHoldMs = 300;
// Block1 uploads being reassembled: all of them together may hold this many bytes (then 5.03), and
// one that sees no block for this long is dropped.
constexpr std::size_t kMaxUploadBytes = 16u << 20;

struct Pending {
    std::string dedup_key;
    coap_session_t* session = nullptr;  // referenced while pending
    std::string token;
    bool done = false;
    DedupCache::Entry answer;
};

// Hands answers from other threads (the store's writer, the twin service) to the loop without
// holding the server: a thread that held it, even briefly, could end up its last owner and destroy
// it after the io_context its timers belong to (ASan saw this in coap_telemetry_tests, a test whose
// ingest answers from threads of its own). stop() closes it; later answers are dropped.
class LoopPoster {
public:
    explicit LoopPoster(asio::io_context& io) : io_(&io) {}
    template <class Handler>
    void post(Handler&& h) {
        std::lock_guard lock(mu_);
        if (io_) asio::post(*io_, std::forward<Handler>(h));
    }
    void close() {
        std::lock_guard lock(mu_);
        io_ = nullptr;
    }

private:
    std::mutex mu_;
    asio::io_context* io_;
};

}  // namespace

struct CoapServer::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& io_, ServerOptions options_, DeviceDirectory& devices_, IngestSink& ingest_,
         metrics::Registry& registry_)
        : io(io_), options(std::move(options_)), devices(devices_), ingest(ingest_), registry(registry_), timer(io_),
          duplicates(registry_.counter("hubgate_coap_duplicates_total",
                                       "Retransmitted CoAP requests answered from the duplicate cache")),
          observer_gauge(registry_.gauge("hubgate_coap_observers",
                                    "CoAP Observe registrations on devicebound resources (session x device)")),
          twin_observer_gauge(registry_.gauge("hubgate_coap_twin_observers",
                                              "CoAP Observe registrations on twin/desired resources (session x device)")) {}

    struct ListenerState {
        config::Listener config;
        std::uint16_t port = 0;
    };

    asio::io_context& io;
    std::shared_ptr<LoopPoster> poster = std::make_shared<LoopPoster>(io);
    ServerOptions options;
    DeviceDirectory& devices;
    IngestSink& ingest;
    metrics::Registry& registry;
    asio::steady_timer timer;
    metrics::Counter& duplicates;
    metrics::Gauge& observer_gauge;
    metrics::Gauge& twin_observer_gauge;

    coap_context_t* ctx = nullptr;
    std::optional<asio::posix::stream_descriptor> fd;
    std::vector<ListenerState> listeners;
    DedupCache dedup;
    MessageIdGenerator ids;
    std::map<std::pair<coap_session_t*, std::string>, std::shared_ptr<Pending>> pending;
    std::string psk_key;  // backing store for the key handed to libcoap (it copies it at once)
    coap_bin_const_t psk_bin{};
    // Unknown identities with several enrollment groups: a DTLS-PSK server can offer one key per
    // handshake, so each new handshake of an id offers the next group's key (devices retry).
    std::map<std::string, std::size_t> psk_rotation;
    // DTLS sessions of pending devices, ended on the loop right after their handshake.
    std::set<coap_session_t*> refused_sessions;
    bool running = false;
    coap_resource_t* unknown = nullptr;  // the unknown-resource handler: every path without its own resource

    // ---- C2D state (io thread only) -------------------------------------------------------------
    struct Locked {
        HubMessage message;
        std::string lock;  // the ETag bytes (8, first byte non-zero so libcoap sends all 8)
        std::function<void(DeliveryOutcome)> done;
    };
    struct C2dDevice {
        bool reachable = false;
        std::optional<Locked> current;
        std::shared_ptr<asio::steady_timer> lock_timer;
        std::shared_ptr<asio::steady_timer> reach_timer;
        coap_resource_t* resource = nullptr;  // devices/{id}/messages/devicebound, owned by the context
        std::set<coap_session_t*> observers;  // sessions observing `resource`
    };
    std::map<std::string, C2dDevice> c2d;
    std::function<void(const std::string&, bool)> reachability;
    std::mt19937_64 lock_rng{std::random_device{}()};
    // GETs held briefly after they made a device reachable, so the relay can hand over its oldest
    // message before the answer goes out (otherwise the first poll always comes back empty).
    struct HeldGet {
        std::string device;
        coap_session_t* session = nullptr;  // referenced while held
        std::string token;
        std::shared_ptr<asio::steady_timer> timer;
    };
    std::vector<std::shared_ptr<HeldGet>> held;

    // ---- device twins (io thread only) ------------------------------------------------------------
    // A device's devices/{id}/twin/desired, made observable on its first GET. `document` is the last
    // desired document (with `$version`) the store gave or committed, in the store's order (reads
    // and changes both come from the writer thread, posted in turn): notifications send it.
    struct TwinDesired {
        coap_resource_t* resource = nullptr;  // owned by the context
        std::string document;
        std::set<coap_session_t*> observers;
    };
    std::map<std::string, TwinDesired> twin_desired;
    // A twin answer too big for one PDU, kept for the repeat of a plain confirmable GET (see
    // write_twin_answer()): by path (the device's; the repeat is authenticated again), for 2 s, once.
    struct ReadyTwin {
        std::string device;
        std::string body;
        std::chrono::steady_clock::time_point until;
    };
    std::map<std::string, ReadyTwin> ready_twins;

    // ---- Block1 reassembly (io thread only) ------------------------------------------------------
    struct Upload {
        std::string body;
        std::chrono::steady_clock::time_point last_block;
    };
    std::map<std::pair<coap_session_t*, std::string>, Upload> uploads;  // by session and path?query
    std::size_t upload_bytes = 0;

    // ---- lifecycle ------------------------------------------------------------------------------

    Status start() {
        startup_libcoap();
        ctx = coap_new_context(nullptr);
        if (!ctx) return Error{"coap: cannot create the libcoap context"};
        coap_set_app_data(ctx, this);
        // libcoap tracks Block1 uploads and answers 2.31 Continue, but the handler sees each block
        // and reassembles the body itself (accept_block()): with COAP_BLOCK_SINGLE_BODY libcoap 4.3.1
        // would buffer whatever size a client announces before the handler could refuse it.
        coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP);

        bool need_psk = false;
        for (const auto& l : options.listeners)
            if (l.protocol == config::Protocol::coaps) need_psk = true;
        if (need_psk) {
            if (!coap_dtls_is_supported()) return Error{"coap: this libcoap has no DTLS support (coaps listener)"};
            coap_dtls_spsk_t spsk{};
            spsk.version = COAP_DTLS_SPSK_SETUP_VERSION;
            spsk.validate_id_call_back = &Impl::validate_psk_identity;
            spsk.id_call_back_arg = this;
            if (!coap_context_set_psk2(ctx, &spsk)) return Error{"coap: cannot set up DTLS-PSK"};
        }

        for (const auto& l : options.listeners) {
            if (l.protocol != config::Protocol::coap && l.protocol != config::Protocol::coaps) continue;
            if (auto err = bind_listener(l)) return err;
        }

        coap_resource_t* r = coap_resource_unknown_init2(nullptr, 0);
        register_handlers(r);
        // libcoap cannot notify observers of the unknown resource (it is not in the context's
        // resource list), so each device's devicebound gets its own observable resource, created
        // on its first GET (device_resource()).
        coap_add_resource(ctx, r);
        unknown = r;
        coap_register_event_handler(ctx, &Impl::on_event);

        const int epfd = coap_context_get_coap_fd(ctx);
        if (epfd < 0) return Error{"coap: libcoap was built without epoll; cannot join the Asio loop"};
        fd.emplace(io, epfd);
        running = true;
        arm_fd();
        schedule_timeout();
        return std::nullopt;
    }

    static void register_handlers(coap_resource_t* r) {
        coap_register_request_handler(r, COAP_REQUEST_POST, &Impl::on_post_trampoline);
        coap_register_request_handler(r, COAP_REQUEST_GET, &Impl::on_get_trampoline);
        coap_register_request_handler(r, COAP_REQUEST_DELETE, &Impl::on_delete_trampoline);
        // RFC 8132 PATCH: twin reported patches (other paths refuse it).
        coap_register_request_handler(r, COAP_REQUEST_PATCH, &Impl::on_patch_trampoline);
        // Without a PUT handler libcoap would answer 4.05 anyway; say why.
        coap_register_request_handler(r, COAP_REQUEST_PUT, &Impl::on_put_trampoline);
    }

    // The observable resource for `device`'s devicebound, made on demand. Its path is libcoap's own
    // rendering of the request's Uri-Path, so libcoap routes the device's next requests (and the
    // re-run of a held one) to it.
    void ensure_device_resource(C2dDevice& d, const coap_pdu_t* req) {
        if (!d.resource) d.resource = observable_resource(req);
    }

    // A resource at the request's path, observable with confirmable notifications (null on failure).
    coap_resource_t* observable_resource(const coap_pdu_t* req) {
        coap_string_t* path = coap_get_uri_path(req);
        if (!path) return nullptr;
        coap_str_const_t* owned = coap_new_str_const(path->s, path->length);
        coap_delete_string(path);
        if (!owned) return nullptr;
        coap_resource_t* r = coap_resource_init(owned, COAP_RESOURCE_FLAGS_RELEASE_URI |
                                                           // confirmable notifications: libcoap drops an
                                                           // observer that stops acknowledging them
                                                           COAP_RESOURCE_FLAGS_NOTIFY_CON);
        if (!r) {
            coap_delete_str_const(owned);
            return nullptr;
        }
        register_handlers(r);
        coap_resource_set_get_observable(r, 1);
        coap_add_resource(ctx, r);
        return r;
    }

    // Observers keep a device reachable; libcoap ends an observation on a cancel, on a failed
    // notification or when the session goes (reported here as SERVER_SESSION_DEL).
    static int on_event(coap_session_t* s, const coap_event_t event) {
        if (event != COAP_EVENT_SERVER_SESSION_DEL && event != COAP_EVENT_DTLS_CONNECTED) return 0;
        auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)));
        if (!self || !self->running) return 0;
        if (event == COAP_EVENT_DTLS_CONNECTED) {
            self->on_dtls_connected(s);
            return 0;
        }
        self->refused_sessions.erase(s);
        for (auto& [device, d] : self->twin_desired)
            if (d.observers.erase(s)) self->twin_observer_gauge.add(-1);
        for (auto& [device, d] : self->c2d) {
            if (!d.observers.erase(s)) continue;
            self->observer_gauge.add(-1);
            if (d.observers.empty() && d.reachable) self->arm_reach_timer(device);
        }
        return 0;
    }

    Status bind_listener(const config::Listener& l) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* res = nullptr;
        const std::string port_text = std::to_string(l.bind.port);
        const std::string where = std::string(config::to_string(l.protocol)) + " on " + l.bind.to_string();
        if (::getaddrinfo(l.bind.host.empty() ? nullptr : l.bind.host.c_str(), port_text.c_str(), &hints, &res) != 0 ||
            !res)
            return Error{"cannot listen for " + where + ": cannot resolve " + l.bind.host};
        std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
        std::uint16_t port = l.bind.port;
        coap_address_t addr;
        coap_address_init(&addr);
        addr.size = res->ai_addrlen;
        std::memcpy(&addr.addr, res->ai_addr, res->ai_addrlen);
        coap_address_set_port(&addr, port);
        const coap_proto_t proto = l.protocol == config::Protocol::coaps ? COAP_PROTO_DTLS : COAP_PROTO_UDP;
        coap_endpoint_t* ep = coap_new_endpoint(ctx, &addr, proto);
        if (!ep) {
            const int libcoap_errno = errno;
            const int err = udp_bind_errno(res->ai_addr, res->ai_addrlen);
            return Error{bind_failure(where, err ? err : libcoap_errno)};
        }
        // Port 0: the kernel's choice, read back from the endpoint itself. (Probing a free port first
        // and binding it again raced with other processes: libcoap binds with SO_REUSEADDR, so a
        // port taken meanwhile was silently shared.)
        if (port == 0) {
            if (auto p = bound_port(ep)) port = *p;
            else return Error{"cannot listen for " + where + ": cannot read the port libcoap bound"};
        }
        listeners.push_back({l, port});
        spdlog::info("coap: listening on {} ({})", l.bind.host + ":" + std::to_string(port),
                     config::to_string(l.protocol));
        return std::nullopt;
    }

    void stop() {
        poster->close();
        if (!ctx) return;
        running = false;
        timer.cancel();
        if (fd) {
            boost::system::error_code ec;
            fd->cancel(ec);
            (void)fd->release();  // libcoap owns the epoll fd and closes it
            fd.reset();
        }
        for (auto& [k, p] : pending) coap_session_release(p->session);
        pending.clear();
        for (auto& h : held) {
            if (h->timer) h->timer->cancel();
            coap_session_release(h->session);
        }
        held.clear();
        uploads.clear();
        upload_bytes = 0;
        observer_gauge.set(0);
        twin_observer_gauge.set(0);
        twin_desired.clear();  // the resources go with the context
        ready_twins.clear();
        // Locked messages stay in the relay's inbox; a stop is not a failed delivery.
        for (auto& [id, d] : c2d) {
            if (d.lock_timer) d.lock_timer->cancel();
            if (d.reach_timer) d.reach_timer->cancel();
        }
        c2d.clear();
        coap_free_context(ctx);
        ctx = nullptr;
        listeners.clear();
    }

    // ---- Asio integration -----------------------------------------------------------------------

    void arm_fd() {
        fd->async_wait(asio::posix::stream_descriptor::wait_read,
                       [w = weak_from_this()](const boost::system::error_code& ec) {
                           auto self = w.lock();
                           if (ec || !self || !self->running) return;
                           self->process();
                           if (self->running) self->arm_fd();
                       });
    }

    void process() {
        if (!ctx) return;
        coap_io_process(ctx, COAP_IO_NO_WAIT);
        schedule_timeout();
    }

    void schedule_timeout() {
        if (!ctx) return;
        coap_tick_t now;
        coap_ticks(&now);
        const unsigned ms = coap_io_prepare_epoll(ctx, now);
        // 0 = libcoap has nothing due; still look in now and then (sessions idle out).
        timer.expires_after(std::chrono::milliseconds(ms ? ms : 1000));
        timer.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
            auto self = w.lock();
            if (ec || !self || !self->running) return;
            self->process();
        });
    }

    // ---- DTLS-PSK -------------------------------------------------------------------------------

    static const coap_bin_const_t* validate_psk_identity(coap_bin_const_t* identity, coap_session_t*, void* arg) {
        auto* self = static_cast<Impl*>(arg);
        const std::string id(reinterpret_cast<const char*>(identity->s), identity->length);
        auto rec = self->devices.find(id);
        if ((!rec || rec->key.empty()) && self->options.pairing && is_hub_id(id)) {
            auto candidates = self->options.pairing->candidates(id);
            if (!candidates.empty()) {
                if (self->psk_rotation.size() > 1000) self->psk_rotation.clear();
                const std::size_t turn = self->psk_rotation[id]++;
                self->psk_key = std::move(candidates[turn % candidates.size()].key);
                self->psk_bin.s = reinterpret_cast<const std::uint8_t*>(self->psk_key.data());
                self->psk_bin.length = self->psk_key.size();
                return &self->psk_bin;
            }
        }
        if (!rec || rec->key.empty()) {
            self->count_refusal("psk_identity");
            spdlog::warn("coap: DTLS-PSK identity '{}' is not a device with a key: handshake refused",
                         id.substr(0, 128));
            return nullptr;
        }
        // The PSK is the key text exactly as in the connection string (common CoAP tools take text).
        self->psk_key = rec->key;
        self->psk_bin.s = reinterpret_cast<const std::uint8_t*>(self->psk_key.data());
        self->psk_bin.length = self->psk_key.size();
        return &self->psk_bin;
    }

    // ---- requests -------------------------------------------------------------------------------

    static void on_not_implemented(coap_resource_t*, coap_session_t*, const coap_pdu_t*, const coap_string_t*,
                                   coap_pdu_t* resp) {
        static constexpr char kWhy[] =
            "PUT is not served: POST messages/events, GET or DELETE messages/devicebound, PATCH twin/reported";
        coap_pdu_set_code(resp, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(501)));
        coap_add_data(resp, sizeof kWhy - 1, reinterpret_cast<const std::uint8_t*>(kWhy));
    }

    static void on_post_trampoline(coap_resource_t*, coap_session_t* s, const coap_pdu_t* req, const coap_string_t*,
                                   coap_pdu_t* resp) {
        auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)));
        self->on_post(s, req, resp, false);
    }

    // PATCH goes the POST way (duplicates, Block1, the answer after the commit); on_post sends it to
    // the twin handler, which refuses it anywhere but twin/reported.
    static void on_patch_trampoline(coap_resource_t*, coap_session_t* s, const coap_pdu_t* req, const coap_string_t*,
                                    coap_pdu_t* resp) {
        auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)));
        self->on_post(s, req, resp, false);
    }

    // PUT is served on rule paths only (DESIGN.md: "POST (and PUT) with the same rules").
    static void on_put_trampoline(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req,
                                  const coap_string_t* q, coap_pdu_t* resp) {
        auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)));
        if (!self->options.translator || match_path(request_target(req).path).kind != PathMatch::Kind::not_found)
            return on_not_implemented(r, s, req, q, resp);
        self->on_post(s, req, resp, true);
    }

    const ListenerState* listener_for(coap_session_t* s) const {
        const auto port = coap_address_get_port(coap_session_get_addr_local(s));
        const bool dtls = coap_session_get_proto(s) == COAP_PROTO_DTLS;
        for (const auto& l : listeners)
            if (l.port == port && (l.config.protocol == config::Protocol::coaps) == dtls) return &l;
        return listeners.empty() ? nullptr : &listeners.front();
    }

    static std::string peer_text(coap_session_t* s) {
        unsigned char buf[INET6_ADDRSTRLEN + 16] = {};
        const auto n = coap_print_addr(coap_session_get_addr_remote(s), buf, sizeof buf);
        std::string peer(reinterpret_cast<const char*>(buf), n);
        peer += coap_session_get_proto(s) == COAP_PROTO_DTLS ? "/dtls" : "/udp";
        return peer;
    }

    void count_refusal(const char* reason) {
        registry.counter("hubgate_coap_refused_total", "CoAP requests refused, by reason", {{"reason", reason}}).inc();
    }

    void count_code(std::uint8_t cls, std::uint8_t detail) {
        registry.counter("hubgate_coap_requests_total", "CoAP telemetry requests answered, by response code",
                         {{"code", code_text(cls, detail)}})
            .inc();
    }

    static void write_answer(coap_pdu_t* resp, const DedupCache::Entry& a) {
        coap_pdu_set_code(resp, static_cast<coap_pdu_code_t>((a.code_class << 5) | a.code_detail));
        if (a.content_format >= 0) {
            std::uint8_t buf[4];
            coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT,
                            coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(a.content_format)), buf);
        }
        if (a.max_age) {
            std::uint8_t buf[4];
            coap_add_option(resp, COAP_OPTION_MAXAGE, coap_encode_var_safe(buf, sizeof buf, a.max_age), buf);
        }
        if (!a.payload.empty())
            coap_add_data(resp, a.payload.size(), reinterpret_cast<const std::uint8_t*>(a.payload.data()));
    }

    // Answers at once with a refusal, logs it once and remembers it for retransmits.
    void refuse(coap_pdu_t* resp, const std::string& key, const std::string& peer, const Refusal& r,
                std::uint32_t max_age = 0) {
        count_refusal(r.counter_reason);
        count_code(r.code_class, r.code_detail);
        spdlog::warn("coap: {} refused with {} ({}): {}", peer, code_text(r.code_class, r.code_detail),
                     r.counter_reason, r.text);
        auto& e = dedup.insert(key, DedupCache::Clock::now());
        e.done = true;
        e.code_class = r.code_class;
        e.code_detail = r.code_detail;
        e.max_age = max_age;
        e.payload = r.text.substr(0, 200);
        write_answer(resp, e);
    }

    // Raw option text (libcoap's coap_get_uri_path/coap_get_query would percent-encode it).
    struct RequestTarget {
        std::string path, query;
        bool slash_in_segment = false;
    };
    static RequestTarget request_target(const coap_pdu_t* req) {
        RequestTarget t;
        coap_opt_iterator_t oi;
        coap_option_iterator_init(req, &oi, COAP_OPT_ALL);
        while (coap_opt_t* o = coap_option_next(&oi)) {
            const std::string_view v(reinterpret_cast<const char*>(coap_opt_value(o)), coap_opt_length(o));
            if (oi.number == COAP_OPTION_URI_PATH) {
                if (!t.path.empty()) t.path += '/';
                t.path += v;
                t.slash_in_segment = t.slash_in_segment || v.find('/') != std::string_view::npos;
            } else if (oi.number == COAP_OPTION_URI_QUERY) {
                if (!t.query.empty()) t.query += '&';
                t.query += v;
            }
        }
        return t;
    }

    // On plain coap (auth = "none") the path names the device: a new id is recorded, unless the
    // gateway already holds gateway.max_seen_devices of them.
    std::optional<Refusal> record_seen(const std::string& device) {
        if (devices.record_seen(device) != DeviceDirectory::Seen::full) return std::nullopt;
        return Refusal{4, 3, "seen_devices_full",
                       "the gateway keeps gateway.max_seen_devices ids from open listeners and is full"};
    }

    // Pairing: a handshake completed with a key an enrollment group derives for an unknown identity.
    // The device is registered now, or (window closed) recorded as pending and its session ended at
    // once, before any request is served: the closest a PSK server comes to failing the handshake,
    // since it cannot tell the right key from a wrong one any earlier (docs/pairing.md).
    void on_dtls_connected(coap_session_t* s) {
        if (!options.pairing) return;
        const coap_bin_const_t* ident = coap_session_get_psk_identity(s);
        const coap_bin_const_t* psk = coap_session_get_psk_key(s);
        if (!ident || !psk) return;
        const std::string id(reinterpret_cast<const char*>(ident->s), ident->length);
        if (auto rec = devices.find(id); rec && !rec->key.empty()) return;
        const auto refusal = enroll(s, id, std::string_view(reinterpret_cast<const char*>(psk->s), psk->length));
        if (!refusal) return;
        count_refusal(refusal->counter_reason);
        spdlog::warn("coap: {} DTLS session of '{}' ended: {}", peer_text(s), id.substr(0, 128), refusal->text);
        refused_sessions.insert(s);
        // Not from inside libcoap's handshake callback: on the loop, if the session still exists.
        asio::post(io, [w = weak_from_this(), s] {
            auto self = w.lock();
            if (!self || !self->running || !self->refused_sessions.erase(s)) return;
            coap_session_disconnected(s, COAP_NACK_TLS_FAILED);
        });
    }

    // A DTLS session whose handshake used a key an enrollment group derives for `device` (pairing):
    // registered now, or refused (4.01) and pending while the window is closed.
    std::optional<Refusal> enroll(coap_session_t* s, const std::string& device, std::string_view psk) {
        for (const auto& c : options.pairing->candidates(device)) {
            if (!constant_time_equal(psk, c.key)) continue;
            psk_rotation.erase(device);
            switch (options.pairing->admit(device, c, peer_ip(s))) {
                case pairing::Admission::registered: return std::nullopt;
                case pairing::Admission::pending:
                    return Refusal{4, 1, "pairing_closed",
                                   "device '" + device + "' holds a key of enrollment " + c.enrollment +
                                       " but the pairing window is closed (pending)"};
                case pairing::Admission::failed:
                    return Refusal{4, 1, "pairing_failed", "device '" + device + "' could not be registered"};
            }
        }
        return std::nullopt;
    }

    static std::string peer_ip(coap_session_t* s) {
        const coap_address_t* a = coap_session_get_addr_remote(s);
        char host[NI_MAXHOST] = {};
        if (!a || ::getnameinfo(&a->addr.sa, a->size, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "?";
        return host;
    }

    // On coaps, a request's device must be the session's PSK identity, and must still have the key
    // the session shook hands with: a DTLS session outlives a reload that removed the device or
    // changed its key, and is refused from then on (4.01; a new handshake decides). `module_id`, when
    // given, gets the device's configured module (one directory lookup per request).
    std::optional<Refusal> check_dtls_device(coap_session_t* s, const std::string& device, const char* what,
                                             std::string* module_id = nullptr) {
        const coap_bin_const_t* ident = coap_session_get_psk_identity(s);
        const std::string_view identity =
            ident ? std::string_view(reinterpret_cast<const char*>(ident->s), ident->length) : std::string_view();
        if (identity != device)
            return Refusal{4, 3, "spoofed_path",
                           std::string(what) + " as device '" + device.substr(0, 128) +
                               "' on a DTLS session authenticated as '" + std::string(identity) + "'"};
        const coap_bin_const_t* psk = coap_session_get_psk_key(s);
        auto rec = devices.find(device);
        if (refused_sessions.count(s))
            return Refusal{4, 1, "pairing_closed", "device '" + device + "': the pairing window is closed (pending)"};
        if ((!rec || rec->key.empty()) && psk && options.pairing) {
            if (auto refusal = enroll(s, device, std::string_view(reinterpret_cast<const char*>(psk->s), psk->length)))
                return refusal;
            rec = devices.find(device);
        }
        if (!rec || !psk ||
            rec->key != std::string_view(reinterpret_cast<const char*>(psk->s), psk->length))
            return Refusal{4, 1, "revoked",
                           "device '" + device + "' was removed or its key changed since this DTLS session began"};
        if (module_id && !rec->module_id.empty()) *module_id = rec->module_id;
        return std::nullopt;
    }

    // Path and authentication checks shared by every C2D request; a refusal is written to `resp`.
    std::optional<PathMatch> c2d_target(coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                                        const std::string& key, const RequestTarget& t) {
        const std::string peer = peer_text(s);
        if (t.slash_in_segment) {
            refuse(resp, key, peer, {4, 0, "bad_path", "a Uri-Path segment contains '/'"});
            return std::nullopt;
        }
        const PathMatch pm = match_path(t.path);
        const auto method = coap_pdu_get_code(req);
        const bool fits = (method == COAP_REQUEST_CODE_GET && pm.kind == PathMatch::Kind::devicebound) ||
                          (method == COAP_REQUEST_CODE_DELETE && pm.kind == PathMatch::Kind::c2d_lock) ||
                          (method == COAP_REQUEST_CODE_POST && pm.kind == PathMatch::Kind::c2d_abandon) ||
                          pm.kind == PathMatch::Kind::bad_device_id;
        if (!fits) {
            refuse(resp, key, peer,
                   {4, 4, "not_found", "no such resource '/" + t.path.substr(0, 100) +
                                           "' for this method; GET devices/{id}/messages/devicebound, DELETE "
                                           "devicebound/{lock}, POST devicebound/{lock}/abandon"});
            return std::nullopt;
        }
        if (pm.kind == PathMatch::Kind::bad_device_id) {
            refuse(resp, key, peer,
                   {4, 0, "bad_path", "device id '" + pm.device_id.substr(0, 128) + "' breaks the rule: " + kHubIdRule});
            return std::nullopt;
        }
        if (auto r = check_device(s, pm.device_id, "C2D request")) {
            refuse(resp, key, peer, *r);
            return std::nullopt;
        }
        return pm;
    }

    // The device a C2D or twin path names: on coaps it must be the DTLS identity (check_dtls_device);
    // on plain coap it is recorded as seen. A refusal to answer with, or nullopt.
    std::optional<Refusal> check_device(coap_session_t* s, const std::string& device_id, const char* what) {
        const ListenerState* l = listener_for(s);
        if (l && l->config.protocol == config::Protocol::coaps) return check_dtls_device(s, device_id, what);
        return record_seen(device_id);
    }

    static std::uint16_t media_type_for(const std::string& content_type) {
        for (std::uint16_t f : {0, 42, 50, 60, 110, 112})
            if (content_type_for_format(f) == content_type) return f;
        constexpr std::string_view vnd = "application/vnd.coap.cf.";
        if (content_type.rfind(vnd, 0) == 0) {
            try {
                const auto n = std::stoul(content_type.substr(vnd.size()));
                if (n <= 0xffff) return static_cast<std::uint16_t>(n);
            } catch (const std::exception&) {
            }
        }
        return 42;  // octet-stream: the body is opaque to the gateway
    }

    // The device's current locked message, or 2.05 empty (no ETag) when it has none.
    void write_devicebound(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                           const std::string& device) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
        count_code(2, 5);
        auto it = c2d.find(device);
        if (it == c2d.end() || !it->second.current) return;
        const Locked& cur = *it->second.current;
        // coap_add_data_large_response() sets the ETag only when the body needs Block2 (replacing
        // any present), so add it here for single-block bodies and pass it for Block2 ones.
        coap_add_option(resp, COAP_OPTION_ETAG, cur.lock.size(), reinterpret_cast<const std::uint8_t*>(cur.lock.data()));
        // Properties travel as the IoT Hub property bag (the MQTT topic's form) in an elective
        // option from the experimental range; a device that ignores it still gets the body.
        const std::string bag = format_message_bag(cur.message);
        if (!bag.empty())
            coap_add_option(resp, kPropertiesOption, bag.size(), reinterpret_cast<const std::uint8_t*>(bag.data()));
        std::uint64_t etag = 0;
        for (unsigned char c : cur.lock) etag = (etag << 8) | c;
        auto* body = new std::string(cur.message.body);
        coap_add_data_large_response(
            r, s, req, resp, nullptr, media_type_for(cur.message.system.content_type), -1, etag, body->size(),
            reinterpret_cast<const std::uint8_t*>(body->data()),
            [](coap_session_t*, void* p) { delete static_cast<std::string*>(p); }, body);
    }

    void on_get(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp) {
        const RequestTarget t = request_target(req);
        if (is_twin(match_path(t.path).kind)) return on_twin_get(r, s, req, resp, t);
        const coap_bin_const_t tok = coap_pdu_get_token(req);
        if (coap_find_async(s, tok)) {  // a held GET re-run (now on the device's resource): answer
            const PathMatch pm = match_path(t.path);
            if (r != unknown) note_observer(pm.device_id, s, req);
            if (separate_block2_unsafe(s, req, pm.device_id)) return ask_again(resp);
            write_devicebound(r, s, req, resp, pm.device_id);
            return;
        }
        // libcoap builds a notification as a confirmable response to the stored registration; a
        // request's own response is an ACK (or NON). Held GETs were answered above.
        if (coap_pdu_get_type(resp) == COAP_MESSAGE_CON && r != unknown) return notify(r, s, req, resp, t);
        const std::string key = dedup_key(peer_text(s), static_cast<std::uint16_t>(coap_pdu_get_mid(req)));
        auto pm = c2d_target(s, req, resp, key, t);
        if (!pm) return;
        auto& d = c2d[pm->device_id];
        const bool was_reachable = d.reachable;
        const bool first = r == unknown;  // the device's devicebound has no resource yet
        if (first) ensure_device_resource(d, req);
        else note_observer(pm->device_id, s, req);
        touch_reachable(pm->device_id);
        if (!first && (was_reachable || d.current)) return write_devicebound(r, s, req, resp, pm->device_id);
        // Answered later (an empty ACK now): libcoap re-runs the request when it is released, and
        // the re-run reaches the device's own observable resource, where an Observe registration
        // takes. A device that just became reachable is held until the relay hands over its oldest
        // message, or briefly when there is none; otherwise it is released at once.
        coap_async_t* async = coap_register_async(s, req, 0);
        if (!async) return write_devicebound(r, s, req, resp, pm->device_id);
        auto h = std::make_shared<HeldGet>();
        h->device = pm->device_id;
        h->session = coap_session_reference(s);
        h->token.assign(reinterpret_cast<const char*>(tok.s), tok.length);
        held.push_back(h);
        if (was_reachable || d.current) {
            asio::post(io, [w = weak_from_this(), h] {
                auto self = w.lock();
                if (self && self->running) self->release_held(h);
            });
            return;
        }
        h->timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(kHoldMs));
        h->timer->async_wait([w = weak_from_this(), h](const boost::system::error_code& ec) {
            auto self = w.lock();
            if (!ec && self && self->running) self->release_held(h);
        });
    }

    // A notification to an observer of a device's devicebound. If the session may no longer see the
    // device (a reload removed it or changed its key), it gets an empty 2.05 instead of the message
    // and stops counting as an observer (its next request gets 4.01). Not a 4.01 here: libcoap 4.3.1
    // frees the observer when a notification's code is above 2.xx and then keeps using it
    // (resource.c, coap_check_notify), which crashed the server; and the Observe option libcoap
    // added cannot be removed through its public API, so the client's observation goes on, empty.
    void notify(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                const RequestTarget& t) {
        const PathMatch pm = match_path(t.path);
        const ListenerState* l = listener_for(s);
        if (l && l->config.protocol == config::Protocol::coaps) {
            if (auto refusal = check_dtls_device(s, pm.device_id, "observation")) {
                count_refusal(refusal->counter_reason);
                spdlog::warn("coap: {} stops observing the C2D queue of {}: {}", peer_text(s), pm.device_id,
                             refusal->text);
                auto& d = c2d[pm.device_id];
                if (d.observers.erase(s)) observer_gauge.add(-1);
                coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
                count_code(2, 5);
                return;
            }
        }
        write_devicebound(r, s, req, resp, pm.device_id);
    }

    // A held answer goes out as a separate response. libcoap 4.3.1 clients (coap-client among them)
    // cannot start a Block2 transfer from a separate response to a plain confirmable GET: they only
    // track one for Observe and NON requests. Such a GET is told to ask again, and its repeat is
    // answered piggy-backed, blocks and all.
    bool separate_block2_unsafe(coap_session_t* s, const coap_pdu_t* req, const std::string& device) {
        coap_opt_iterator_t oi;
        if (coap_pdu_get_type(req) != COAP_MESSAGE_CON || coap_check_option(req, COAP_OPTION_OBSERVE, &oi))
            return false;
        auto it = c2d.find(device);
        if (it == c2d.end() || !it->second.current) return false;
        const HubMessage& m = it->second.current->message;
        std::size_t limit = coap_session_max_pdu_size(s);
        // Room for the header, token, ETag, Content-Format, Block2/Size2 and the properties option.
        const std::size_t overhead = 64 + format_message_bag(m).size();
        limit = limit > overhead ? limit - overhead : 0;
        coap_block_t block;
        if (coap_get_block(req, COAP_OPTION_BLOCK2, &block)) limit = std::min<std::size_t>(limit, 1u << (block.szx + 4));
        return m.body.size() > limit;
    }

    // 5.03 with Max-Age 0: a message is ready, repeat the GET now.
    void ask_again(coap_pdu_t* resp) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
        std::uint8_t buf[4];
        coap_add_option(resp, COAP_OPTION_MAXAGE, coap_encode_var_safe(buf, sizeof buf, 0), buf);
        static constexpr std::string_view text = "a C2D message is ready; repeat the GET";
        coap_add_data(resp, text.size(), reinterpret_cast<const std::uint8_t*>(text.data()));
        count_code(5, 3);
    }

    // Tracks Observe registrations (0) and cancellations (1) on a device's own resource.
    void note_observer(const std::string& device, coap_session_t* s, const coap_pdu_t* req) {
        coap_opt_iterator_t oi;
        const coap_opt_t* o = coap_check_option(req, COAP_OPTION_OBSERVE, &oi);
        if (!o) return;
        auto& d = c2d[device];
        if (coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) == COAP_OBSERVE_ESTABLISH) {
            if (d.observers.insert(s).second) {
                observer_gauge.add(1);
                spdlog::info("coap: {} observes the C2D queue of {}", peer_text(s), device);
            }
        } else if (d.observers.erase(s)) {
            observer_gauge.add(-1);
            spdlog::info("coap: {} stopped observing the C2D queue of {}", peer_text(s), device);
        }
    }

    void release_held(const std::shared_ptr<HeldGet>& h) {
        auto it = std::find(held.begin(), held.end(), h);
        if (it == held.end()) return;
        held.erase(it);
        if (h->timer) h->timer->cancel();
        const coap_bin_const_t tok{h->token.size(), reinterpret_cast<const std::uint8_t*>(h->token.data())};
        if (coap_async_t* async = coap_find_async(h->session, tok)) coap_async_trigger(async);
        coap_session_release(h->session);
        process();
    }

    // A C2D request from the device makes it reachable for lock_timeout; so does a pending lock or
    // an Observe registration, for as long as they last.
    void touch_reachable(const std::string& device) {
        arm_reach_timer(device);
        auto& d = c2d[device];
        if (!d.reachable) {
            d.reachable = true;
            if (reachability) reachability(device, true);
        }
    }

    void arm_reach_timer(const std::string& device) {
        auto& d = c2d[device];
        if (!d.reach_timer) d.reach_timer = std::make_shared<asio::steady_timer>(io);
        d.reach_timer->expires_after(std::chrono::seconds(options.lock_timeout_seconds));
        d.reach_timer->async_wait([w = weak_from_this(), device](const boost::system::error_code& ec) {
            auto self = w.lock();
            if (ec || !self || !self->running) return;
            auto it = self->c2d.find(device);
            if (it == self->c2d.end()) return;
            // A pending lock (the lock timer decides) or an observer keeps the device reachable.
            if (it->second.current || !it->second.observers.empty()) return self->arm_reach_timer(device);
            self->make_unreachable(device);
        });
    }

    void make_unreachable(const std::string& device) {
        auto& d = c2d[device];
        if (d.reach_timer) d.reach_timer->cancel();
        if (!d.reachable) return;
        d.reachable = false;
        if (reachability) reachability(device, false);
    }

    void on_deliver(const std::string& device, HubMessage m, std::function<void(DeliveryOutcome)> done) {
        auto it = c2d.find(device);
        if (!running || it == c2d.end() || !it->second.reachable || it->second.current)
            return done(DeliveryOutcome::unreachable);
        auto& d = it->second;
        std::uint64_t v = lock_rng() | (std::uint64_t{1} << 63);
        std::string lock(8, '\0');
        for (int i = 7; i >= 0; --i, v >>= 8) lock[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
        d.current = Locked{std::move(m), lock, std::move(done)};
        if (!d.lock_timer) d.lock_timer = std::make_shared<asio::steady_timer>(io);
        d.lock_timer->expires_after(std::chrono::seconds(options.lock_timeout_seconds));
        d.lock_timer->async_wait([w = weak_from_this(), device, lock](const boost::system::error_code& ec) {
            auto self = w.lock();
            if (ec || !self || !self->running) return;
            spdlog::info("coap: C2D lock {} of {} expired; the device counts as away until its next request",
                         lock_to_hex(lock), device);
            // Like an MQTT disconnect before PUBACK: the device is gone and the delivery failed.
            // Without this a device that polled once would be handed the message again and again,
            // each expiry raising its delivery count, until it was dead-lettered.
            self->make_unreachable(device);
            self->settle(device, lock, DeliveryOutcome::not_delivered);
        });
        // Observers first: a held registration re-run after this is answered with the message and
        // must not get it again as a notification.
        if (d.resource) coap_resource_notify_observers(d.resource, nullptr);
        for (auto h : std::vector(held))
            if (h->device == device) release_held(h);
        process();
    }

    // Ends the lock `lock` of `device` with `outcome`; false when it is not the current lock.
    bool settle(const std::string& device, const std::string& lock, DeliveryOutcome outcome) {
        auto it = c2d.find(device);
        if (it == c2d.end() || !it->second.current || it->second.current->lock != lock) return false;
        auto done = std::move(it->second.current->done);
        it->second.current.reset();
        if (it->second.lock_timer) it->second.lock_timer->cancel();
        done(outcome);  // the relay may hand over the next message at once
        return true;
    }

    // DELETE devicebound/{lock}[?reject] and POST devicebound/{lock}/abandon.
    void on_settle(coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp, const RequestTarget& t) {
        const std::string peer = peer_text(s);
        const std::string key = dedup_key(peer, static_cast<std::uint16_t>(coap_pdu_get_mid(req)));
        if (auto* e = dedup.find(key, DedupCache::Clock::now())) {
            duplicates.inc();
            if (e->done) write_answer(resp, *e);
            return;
        }
        auto pm = c2d_target(s, req, resp, key, t);
        if (!pm) return;
        touch_reachable(pm->device_id);
        DeliveryOutcome outcome = DeliveryOutcome::completed;
        if (pm->kind == PathMatch::Kind::c2d_abandon)
            outcome = DeliveryOutcome::not_delivered;
        else if (t.query == "reject" || t.query.rfind("reject=", 0) == 0)
            outcome = DeliveryOutcome::rejected;
        if (!settle(pm->device_id, pm->lock, outcome))
            return refuse(resp, key, peer,
                          {4, 4, "unknown_lock", "no message of '" + pm->device_id.substr(0, 128) + "' is locked by " +
                                                     lock_to_hex(pm->lock) + " (unknown or expired lock)"});
        auto& e = dedup.insert(key, DedupCache::Clock::now());
        e.done = true;
        e.code_class = 2;
        e.code_detail = pm->kind == PathMatch::Kind::c2d_abandon ? 4 : 2;
        count_code(e.code_class, e.code_detail);
        write_answer(resp, e);
    }

    // ---- device twins (docs/coap.md, "Device twins") ---------------------------------------------

    static bool is_twin(PathMatch::Kind k) {
        return k == PathMatch::Kind::twin || k == PathMatch::Kind::twin_reported || k == PathMatch::Kind::twin_desired;
    }

    // Path, method and authentication checks shared by every twin request, as for C2D: on coaps the
    // {id} must be the DTLS-PSK identity (4.03) still holding its key (4.01); on coap the path names
    // the device. A refusal is written to `resp`.
    std::optional<PathMatch> twin_target(coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                                         const std::string& key, const std::string& peer, const RequestTarget& t) {
        if (t.slash_in_segment) {
            refuse(resp, key, peer, {4, 0, "bad_path", "a Uri-Path segment contains '/'"});
            return std::nullopt;
        }
        const PathMatch pm = match_path(t.path);
        const auto method = coap_pdu_get_code(req);
        const bool fits =
            (method == COAP_REQUEST_CODE_GET && (pm.kind == PathMatch::Kind::twin || pm.kind == PathMatch::Kind::twin_desired)) ||
            ((method == COAP_REQUEST_CODE_PATCH || method == COAP_REQUEST_CODE_POST) &&
             pm.kind == PathMatch::Kind::twin_reported);
        if (pm.kind == PathMatch::Kind::bad_device_id) {
            refuse(resp, key, peer,
                   {4, 0, "bad_path", "device id '" + pm.device_id.substr(0, 128) + "' breaks the rule: " + kHubIdRule});
            return std::nullopt;
        }
        if (!fits || !options.twins) {
            refuse(resp, key, peer,
                   {4, 4, "not_found",
                    "no such resource '/" + t.path.substr(0, 100) + "' for this method" +
                        (options.twins ? "; GET devices/{id}/twin, GET (Observe) devices/{id}/twin/desired, PATCH or "
                                         "POST devices/{id}/twin/reported"
                                       : "")});
            return std::nullopt;
        }
        if (auto r = check_device(s, pm.device_id, "twin request")) {
            refuse(resp, key, peer, *r);
            return std::nullopt;
        }
        return pm;
    }

    // Registers the request for a separate answer (an empty ACK now); null when libcoap cannot.
    std::shared_ptr<Pending> defer(coap_session_t* s, const coap_pdu_t* req, const std::string& dedup_key) {
        if (!coap_register_async(s, req, 0)) return nullptr;
        const coap_bin_const_t tok = coap_pdu_get_token(req);
        auto p = std::make_shared<Pending>();
        p->dedup_key = dedup_key;
        p->session = coap_session_reference(s);
        p->token.assign(reinterpret_cast<const char*>(tok.s), tok.length);
        pending[{s, p->token}] = p;
        return p;
    }

    // The TwinSink's answer (any thread) back on the loop, into the deferred request's answer.
    std::function<void(TwinAnswer)> twin_reply(const std::shared_ptr<Pending>& p, std::string peer, std::string device,
                                               PathMatch::Kind kind) {
        return [post = poster, w = weak_from_this(), p, peer = std::move(peer), device = std::move(device),
                kind](TwinAnswer a) {
            post->post([w, p, peer, device, kind, a = std::move(a)]() mutable {
                if (auto me = w.lock()) me->on_twin_answer(p, peer, device, kind, std::move(a));
            });
        };
    }

    void on_twin_answer(const std::shared_ptr<Pending>& p, const std::string& peer, const std::string& device,
                        PathMatch::Kind kind, TwinAnswer t) {
        if (!running) return;
        auto& a = p->answer;
        a.content_format = COAP_MEDIATYPE_APPLICATION_JSON;
        if (t.status == 200) {
            a.code_class = 2;
            a.code_detail = 5;
            a.payload = std::move(t.body);
            if (kind == PathMatch::Kind::twin_desired)
                if (auto it = twin_desired.find(device); it != twin_desired.end()) it->second.document = a.payload;
        } else if (t.status == 204) {
            // The patch is committed: the new reported version is the answer's payload.
            a.code_class = 2;
            a.code_detail = 4;
            a.payload = "{\"$version\":" + std::to_string(t.version) + "}";
            forget_ready_twins(device);
        } else {
            // The service's JSON error body ({"errorCode":...,"message":...}, as MQTT devices get it).
            const bool bad = t.status == 400;
            a.code_class = bad ? 4 : 5;
            a.code_detail = bad ? 0 : 3;
            a.payload = std::move(t.body);
            count_refusal(bad ? "bad_twin_patch" : "store_failed");
            spdlog::warn("coap: {} twin request of {} answered {}: {}", peer, device,
                         code_text(a.code_class, a.code_detail), a.payload.substr(0, 200));
        }
        answer_later(p);
    }

    // PATCH or POST devices/{id}/twin/reported (and any PATCH, refused elsewhere): a JSON
    // merge-patch of the reported properties, answered 2.04 {"$version":V} only after the commit.
    void on_twin_patch(coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp, const std::string& key,
                       const std::string& peer, const RequestTarget& target) {
        auto pm = twin_target(s, req, resp, key, peer, target);
        if (!pm) return;
        coap_opt_iterator_t oi;
        std::optional<std::uint32_t> content_format;
        if (const coap_opt_t* cf = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &oi))
            content_format = coap_decode_var_bytes(coap_opt_value(cf), coap_opt_length(cf));
        if (auto r = check_twin_patch_format(content_format)) return refuse(resp, key, peer, *r);
        size_t len = 0, offset = 0, total = 0;
        const std::uint8_t* data = nullptr;
        std::string body;
        if (coap_get_data_large(req, &len, &data, &offset, &total)) body.assign(reinterpret_cast<const char*>(data), len);
        coap_block_t block1;
        if (coap_get_block(req, COAP_OPTION_BLOCK1, &block1)) {
            std::string assembled;
            const BlockStep step = accept_block(s, req, target, block1, body, assembled);
            if (step.refusal) return refuse(resp, key, peer, *step.refusal, step.max_age);
            if (!step.complete) {
                coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);  // libcoap makes it 2.31 Continue
                return;
            }
            body = std::move(assembled);
        }
        auto p = defer(s, req, key);
        if (!p) return refuse(resp, key, peer, {5, 0, "internal", "cannot defer the answer"});
        dedup.insert(key, DedupCache::Clock::now());  // pending: retransmits get an empty ACK
        options.twins->update_reported(pm->device_id, std::move(body),
                                       twin_reply(p, peer, pm->device_id, PathMatch::Kind::twin_reported));
        // Leaving the response empty makes libcoap send the empty ACK; the answer follows separately.
    }

    // GET devices/{id}/twin (both documents) and devices/{id}/twin/desired (Observe). Read from the
    // store and answered separately; a desired change is notified from twin_desired's document.
    void on_twin_get(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                     const RequestTarget& t) {
        const coap_bin_const_t tok = coap_pdu_get_token(req);
        if (coap_find_async(s, tok)) {  // the re-run once the store answered, or a retransmit before
            const std::string token(reinterpret_cast<const char*>(tok.s), tok.length);
            auto it = pending.find({s, token});
            if (it == pending.end() || !it->second->done) {
                duplicates.inc();  // a retransmit while the read is pending: empty ACK again
                return;
            }
            auto p = it->second;
            pending.erase(it);
            coap_session_release(p->session);
            const PathMatch pm = match_path(t.path);
            if (pm.kind == PathMatch::Kind::twin_desired && r != unknown && p->answer.code_class == 2)
                note_twin_observer(pm.device_id, s, req);
            write_twin_answer(r, s, req, resp, pm, p->answer, true);
            return;
        }
        // A notification is a confirmable response to the stored registration (see on_get).
        if (coap_pdu_get_type(resp) == COAP_MESSAGE_CON && r != unknown) return notify_twin(r, s, req, resp, t);
        const std::string peer = peer_text(s);
        const std::string key = dedup_key(peer, static_cast<std::uint16_t>(coap_pdu_get_mid(req)));
        auto pm = twin_target(s, req, resp, key, peer, t);
        if (!pm) return;
        coap_opt_iterator_t oi;
        if (const coap_opt_t* accept = coap_check_option(req, COAP_OPTION_ACCEPT, &oi))
            if (coap_decode_var_bytes(coap_opt_value(accept), coap_opt_length(accept)) != COAP_MEDIATYPE_APPLICATION_JSON)
                return refuse(resp, key, peer, {4, 6, "not_acceptable", "a twin is served as application/json (50) only"});
        // The repeat of a GET told to ask again (a body too big for a separate answer): piggy-backed.
        if (auto it = ready_twins.find(t.path); it != ready_twins.end()) {
            ReadyTwin ready = std::move(it->second);
            ready_twins.erase(it);
            if (std::chrono::steady_clock::now() < ready.until) {
                DedupCache::Entry a;
                a.done = true;
                a.code_class = 2;
                a.code_detail = 5;
                a.content_format = COAP_MEDIATYPE_APPLICATION_JSON;
                a.payload = std::move(ready.body);
                return write_twin_answer(r, s, req, resp, *pm, a, false);
            }
        }
        if (pm->kind == PathMatch::Kind::twin_desired) {
            auto& d = twin_desired[pm->device_id];
            // Observable from the first GET on: libcoap re-runs the deferred request on it, where an
            // Observe registration takes (as for devicebound).
            if (!d.resource) d.resource = observable_resource(req);
        }
        auto p = defer(s, req, {});
        if (!p) return refuse(resp, key, peer, {5, 0, "internal", "cannot defer the answer"});
        auto done = twin_reply(p, peer, pm->device_id, pm->kind);
        if (pm->kind == PathMatch::Kind::twin_desired)
            options.twins->get_desired(pm->device_id, std::move(done));
        else
            options.twins->get_twin(pm->device_id, std::move(done));
    }

    // 2.05 with the document (Block2 when it needs more than one PDU; the desired document's ETag is
    // its $version), or the error as it came. `separate`: the answer to a deferred request.
    void write_twin_answer(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                           const PathMatch& pm, const DedupCache::Entry& a, bool separate) {
        if (a.code_class != 2) {
            count_code(a.code_class, a.code_detail);
            return write_answer(resp, a);
        }
        std::uint64_t etag = 0;
        if (pm.kind == PathMatch::Kind::twin_desired) etag = version_of(a.payload);
        if (separate && separate_twin_unsafe(s, req, a.payload.size())) {
            // libcoap 4.3.1 clients cannot start Block2 from a separate response to a plain
            // confirmable GET: keep the body for the repeat and ask for it.
            if (ready_twins.size() > 1000) ready_twins.clear();
            ready_twins[request_target(req).path] =
                ReadyTwin{pm.device_id, a.payload, std::chrono::steady_clock::now() + std::chrono::seconds(2)};
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
            std::uint8_t buf[4];
            coap_add_option(resp, COAP_OPTION_MAXAGE, coap_encode_var_safe(buf, sizeof buf, 0), buf);
            static constexpr std::string_view text = "the twin is ready; repeat the GET";
            coap_add_data(resp, text.size(), reinterpret_cast<const std::uint8_t*>(text.data()));
            count_code(5, 3);
            return;
        }
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
        count_code(2, 5);
        if (etag) {
            // coap_add_data_large_response() sets the ETag itself only for Block2 bodies.
            std::uint8_t buf[8];
            coap_add_option(resp, COAP_OPTION_ETAG, coap_encode_var_safe8(buf, sizeof buf, etag), buf);
        }
        auto* body = new std::string(a.payload);
        coap_add_data_large_response(
            r, s, req, resp, nullptr, COAP_MEDIATYPE_APPLICATION_JSON, -1, etag, body->size(),
            reinterpret_cast<const std::uint8_t*>(body->data()),
            [](coap_session_t*, void* p) { delete static_cast<std::string*>(p); }, body);
    }

    // Whether a deferred answer of `size` bytes would need Block2 on a plain confirmable GET, which
    // libcoap 4.3.1 clients cannot follow from a separate response (see separate_block2_unsafe()).
    static bool separate_twin_unsafe(coap_session_t* s, const coap_pdu_t* req, std::size_t size) {
        coap_opt_iterator_t oi;
        if (coap_pdu_get_type(req) != COAP_MESSAGE_CON || coap_check_option(req, COAP_OPTION_OBSERVE, &oi))
            return false;
        std::size_t limit = coap_session_max_pdu_size(s);
        limit = limit > 64 ? limit - 64 : 0;  // header, token, ETag, Content-Format, Block2/Size2
        coap_block_t block;
        if (coap_get_block(req, COAP_OPTION_BLOCK2, &block)) limit = std::min<std::size_t>(limit, 1u << (block.szx + 4));
        return size > limit;
    }

    // The `"$version":N` of a desired document (the gateway wrote it last: twin_json's with_version).
    static std::uint64_t version_of(std::string_view doc) {
        const auto at = doc.rfind("\"$version\":");
        if (at == std::string_view::npos) return 0;
        std::uint64_t v = 0;
        for (auto i = at + 11; i < doc.size() && doc[i] >= '0' && doc[i] <= '9'; ++i) v = v * 10 + (doc[i] - '0');
        return v;
    }

    // A notification to an observer of a device's twin/desired: the whole current desired
    // document. Never an error code (libcoap 4.3.1 crashes on one, see notify()): a session that may
    // no longer see the device gets an empty 2.05 and stops counting as an observer.
    void notify_twin(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp,
                     const RequestTarget& t) {
        const PathMatch pm = match_path(t.path);
        auto it = twin_desired.find(pm.device_id);
        const ListenerState* l = listener_for(s);
        std::optional<Refusal> refusal;
        if (l && l->config.protocol == config::Protocol::coaps) refusal = check_dtls_device(s, pm.device_id, "observation");
        if (refusal || it == twin_desired.end() || it->second.document.empty()) {
            if (refusal) {
                count_refusal(refusal->counter_reason);
                spdlog::warn("coap: {} stops observing the desired properties of {}: {}", peer_text(s), pm.device_id,
                             refusal->text);
                if (it != twin_desired.end() && it->second.observers.erase(s)) twin_observer_gauge.add(-1);
            }
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
            count_code(2, 5);
            return;
        }
        DedupCache::Entry a;
        a.done = true;
        a.code_class = 2;
        a.code_detail = 5;
        a.content_format = COAP_MEDIATYPE_APPLICATION_JSON;
        a.payload = it->second.document;
        write_twin_answer(r, s, req, resp, pm, a, false);
    }

    void note_twin_observer(const std::string& device, coap_session_t* s, const coap_pdu_t* req) {
        coap_opt_iterator_t oi;
        const coap_opt_t* o = coap_check_option(req, COAP_OPTION_OBSERVE, &oi);
        if (!o) return;
        auto& d = twin_desired[device];
        if (coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) == COAP_OBSERVE_ESTABLISH) {
            if (d.observers.insert(s).second) {
                twin_observer_gauge.add(1);
                spdlog::info("coap: {} observes the desired properties of {}", peer_text(s), device);
            }
        } else if (d.observers.erase(s)) {
            twin_observer_gauge.add(-1);
            spdlog::info("coap: {} stopped observing the desired properties of {}", peer_text(s), device);
        }
    }

    // A committed desired change (on the loop, in the store's order).
    void on_twin_desired(const std::string& device, std::string document) {
        forget_ready_twins(device);
        auto it = twin_desired.find(device);
        if (it == twin_desired.end()) return;  // never asked for over CoAP: nobody to notify
        it->second.document = std::move(document);
        if (it->second.resource) coap_resource_notify_observers(it->second.resource, nullptr);
        process();
    }

    void forget_ready_twins(const std::string& device) {
        for (auto it = ready_twins.begin(); it != ready_twins.end();)
            it = it->second.device == device ? ready_twins.erase(it) : std::next(it);
    }

    static void on_get_trampoline(coap_resource_t* r, coap_session_t* s, const coap_pdu_t* req, const coap_string_t*,
                                  coap_pdu_t* resp) {
        static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)))->on_get(r, s, req, resp);
    }

    static void on_delete_trampoline(coap_resource_t*, coap_session_t* s, const coap_pdu_t* req, const coap_string_t*,
                                     coap_pdu_t* resp) {
        auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(s)));
        self->on_settle(s, req, resp, request_target(req));
    }

    struct BlockStep {
        bool complete = false;  // the body is whole (in `assembled`)
        std::optional<Refusal> refusal;
        std::uint32_t max_age = 0;
    };

    // One Block1 block of a telemetry upload. The 256 KB cap applies to the announced Size1 and to
    // every block's end, so an oversize upload is refused at its first block past the cap.
    // Blocks must come in order; a repeated block is acknowledged again.
    BlockStep accept_block(coap_session_t* s, const coap_pdu_t* req, const RequestTarget& target,
                           const coap_block_t& block, std::string_view data, std::string& assembled) {
        const auto now = std::chrono::steady_clock::now();
        for (auto it = uploads.begin(); it != uploads.end();) {
            if (now - it->second.last_block > options.upload_idle) {
                upload_bytes -= it->second.body.size();
                it = uploads.erase(it);
            } else {
                ++it;
            }
        }
        const std::size_t offset = static_cast<std::size_t>(block.num) << (block.szx + 4);
        coap_opt_iterator_t oi;
        std::size_t announced = 0;
        if (const coap_opt_t* size1 = coap_check_option(req, COAP_OPTION_SIZE1, &oi))
            announced = coap_decode_var_bytes(coap_opt_value(size1), coap_opt_length(size1));
        const auto key = std::make_pair(s, target.path + "?" + target.query);
        auto drop = [&] {
            auto it = uploads.find(key);
            if (it == uploads.end()) return;
            upload_bytes -= it->second.body.size();
            uploads.erase(it);
        };
        if (announced > kMaxHubMessageBytes || offset + data.size() > kMaxHubMessageBytes) {
            drop();
            return {false,
                    Refusal{4, 13, "oversize",
                            "block-wise upload of " + std::to_string(std::max(announced, offset + data.size())) +
                                "+ bytes is over the 256 KB (262144-byte) message limit"},
                    0};
        }
        auto it = uploads.find(key);
        if (offset == 0 && it != uploads.end()) {  // a new upload on the same path replaces the old one
            upload_bytes -= it->second.body.size();
            it->second.body.clear();
        }
        if (it == uploads.end()) {
            if (offset != 0)
                return {false, Refusal{4, 8, "block_order", "block " + std::to_string(block.num) +
                                                                " of an upload whose first block never came"},
                        0};
            it = uploads.emplace(key, Upload{}).first;
        }
        Upload& u = it->second;
        u.last_block = now;
        if (offset > u.body.size()) {
            Refusal r{4, 8, "block_order",
                      "block " + std::to_string(block.num) + " arrived before byte " + std::to_string(u.body.size())};
            drop();  // frees `u`
            return {false, std::move(r), 0};
        }
        if (offset + data.size() > u.body.size()) {
            const std::size_t fresh = offset + data.size() - u.body.size();
            if (upload_bytes + fresh > kMaxUploadBytes) {
                drop();
                return {false, Refusal{5, 3, "no_room", "too many block-wise uploads in progress, retry later"},
                        options.no_room_max_age};
            }
            u.body.append(data.substr(u.body.size() - offset));
            upload_bytes += fresh;
        }
        if (block.m) return {};
        assembled = std::move(u.body);
        upload_bytes -= assembled.size();
        uploads.erase(it);
        return {true, std::nullopt, 0};
    }

    // A POST/PUT outside the IoT Hub paths, through the rules: the message, or a refusal (4.04 for
    // what no rule matches unless the listener keeps it raw, 4.00/4.15 for a payload a rule refuses,
    // 4.03 for a spoof).
    std::variant<HubMessage, Refusal> translate_request(coap_session_t* s, const ListenerState& l,
                                                        const RequestTarget& target,
                                                        std::optional<std::uint32_t> content_format,
                                                        std::string_view body) {
        auto* tr = options.translator;
        const bool dtls = l.config.protocol == config::Protocol::coaps;
        std::string identity;
        if (dtls) {
            const coap_bin_const_t* ident = coap_session_get_psk_identity(s);
            if (ident) identity.assign(reinterpret_cast<const char*>(ident->s), ident->length);
            if (auto r = check_dtls_device(s, identity, "POST")) return *r;
        }
        std::string module_id = l.config.module_id;
        if (!identity.empty())
            if (auto rec = devices.find(identity); rec && !rec->module_id.empty()) module_id = rec->module_id;
        // Uri-Query options are a property bag, as on the IoT Hub paths.
        HubMessage query;
        if (auto err = apply_property_bag(target.query, query)) return Refusal{4, 0, "bad_property_bag", err->reason};
        const std::string path = "/" + target.path;
        translate::Translation t;
        if (tr) {
            translate::Inbound in;
            in.transport = translate::Transport::coap;
            in.listener = l.config.name;
            in.topic = path;
            in.payload = body;
            if (content_format && *content_format <= 0xffff)
                in.content_format = static_cast<std::uint16_t>(*content_format);
            in.auth_device = identity;
            in.default_module = module_id;
            in.query = &query.properties;
            in.receive_ms = unix_ms();
            t = tr->translate(in);
        }
        const std::string who = identity.empty() ? std::string("an open listener") : "device " + identity;
        switch (t.verdict) {
            case translate::Verdict::accepted: {
                // System properties from the query ($.mid, $.cid, ...); the rule's body and content type stay.
                const std::string ct = t.message.system.content_type, ce = t.message.system.content_encoding;
                SystemProperties sys = query.system;
                sys.content_type = ct;
                sys.content_encoding = ce;
                if (sys.creation_time.empty()) sys.creation_time = t.message.system.creation_time;
                t.message.system = std::move(sys);
                if (auto err = normalize_message(t.message, ids)) {
                    const bool big = static_cast<bool>(check_size(t.message));
                    tr->refused_at_door(t, big ? "oversize" : "invalid_message", err->reason);
                    return Refusal{4, static_cast<std::uint8_t>(big ? 13 : 0), big ? "oversize" : "invalid_message",
                                   err->reason};
                }
                // A device a rule names becomes known (C2D can reach it: GET devicebound), bounded
                // like ids on open listeners are; asked only for a device without a route yet.
                if (t.message.device_id != identity && !tr->route_of(t.message.device_id) &&
                    devices.record_seen(t.message.device_id) == DeviceDirectory::Seen::full) {
                    tr->refused_at_door(t, "seen_devices_full", "the gateway keeps gateway.max_seen_devices ids and is full");
                    return Refusal{4, 3, "seen_devices_full",
                                   "the gateway keeps gateway.max_seen_devices ids from open listeners and is full"};
                }
                tr->accepted(t, {});
                return std::move(t.message);
            }
            case translate::Verdict::refused_decode:
            case translate::Verdict::bad_device_id:
                return Refusal{4, 0, to_string(t.verdict), "rule " + t.rule + ": " + t.reason};
            case translate::Verdict::refused_format:
                return Refusal{4, 15, to_string(t.verdict), "rule " + t.rule + ": " + t.reason};
            case translate::Verdict::spoof:
                return Refusal{4, 3, "spoof", "rule " + t.rule + ": " + t.reason};
            case translate::Verdict::unmatched:
                break;
        }
        const bool named = tr && tr->names_listener(l.config.name, translate::Transport::coap);
        const config::Unmatched mode = l.config.unmatched.value_or(config::Unmatched::refuse);
        if (mode != config::Unmatched::raw) {
            if (tr) tr->unmatched(l.config.name, mode == config::Unmatched::drop ? "drop" : "refuse", path, who);
            return Refusal{4, 4, "not_found",
                           "no such resource '" + path.substr(0, 100) + "'; POST /devices/{id}/messages/events" +
                               (named ? " or a path a rule matches" : "")};
        }
        if (identity.empty()) return Refusal{4, 4, "not_found", "unmatched path '" + path.substr(0, 100) +
                                                                   "' names no device to keep it raw for"};
        HubMessage m = std::move(query);
        m.body.assign(body);
        m.device_id = identity;
        m.module_id = module_id;
        m.system.content_type = "application/octet-stream";
        m.properties.set("coap-path", path);
        if (auto err = normalize_message(m, ids)) return Refusal{4, 0, "invalid_message", err->reason};
        if (tr) tr->unmatched(l.config.name, "raw", path, who);
        return m;
    }

    void on_post(coap_session_t* s, const coap_pdu_t* req, coap_pdu_t* resp, bool put) {
        const coap_bin_const_t tok = coap_pdu_get_token(req);
        std::string token(reinterpret_cast<const char*>(tok.s), tok.length);

        // The async trigger re-runs the request once the commit finished: answer from the result.
        if (coap_find_async(s, tok)) {
            auto it = pending.find({s, token});
            if (it != pending.end() && it->second->done) {
                write_answer(resp, it->second->answer);
                count_code(it->second->answer.code_class, it->second->answer.code_detail);
                coap_session_release(it->second->session);
                pending.erase(it);
            } else {
                duplicates.inc();  // a retransmit while the commit is pending: empty ACK again
            }
            return;
        }

        const std::string peer = peer_text(s);
        const std::string key = dedup_key(peer, static_cast<std::uint16_t>(coap_pdu_get_mid(req)));
        if (auto* e = dedup.find(key, DedupCache::Clock::now())) {
            duplicates.inc();
            if (e->done) write_answer(resp, *e);
            return;
        }

        const RequestTarget target = request_target(req);
        if (coap_pdu_get_code(req) == COAP_REQUEST_CODE_PATCH || is_twin(match_path(target.path).kind))
            return on_twin_patch(s, req, resp, key, peer, target);
        if (match_path(target.path).kind == PathMatch::Kind::c2d_abandon) return on_settle(s, req, resp, target);
        const std::string& path = target.path;
        const std::string& query_text = target.query;
        const bool slash_in_segment = target.slash_in_segment;
        const ListenerState* l = listener_for(s);
        if (!l) return;
        if (slash_in_segment)
            return refuse(resp, key, peer, {4, 0, "bad_path", "a Uri-Path segment contains '/'"});
        const PathMatch pm = match_path(path);
        // Outside the IoT Hub paths: the rules (or the listener's `unmatched`), after the body is whole.
        const bool rule_path = pm.kind == PathMatch::Kind::not_found;
        if (rule_path && !options.translator && l->config.unmatched.value_or(config::Unmatched::refuse) != config::Unmatched::raw)
            return refuse(resp, key, peer,
                          {4, 4, "not_found", "no such resource '/" + path.substr(0, 100) +
                                                  "'; POST /devices/{id}/messages/events"});
        (void)put;
        if (pm.kind == PathMatch::Kind::devicebound || pm.kind == PathMatch::Kind::c2d_lock) {
            (void)c2d_target(s, req, resp, key, target);  // the C2D paths take no plain POST: 4.04
            return;
        }
        if (pm.kind == PathMatch::Kind::bad_device_id)
            return refuse(resp, key, peer,
                          {4, 0, "bad_path", "device id '" + pm.device_id.substr(0, 128) + "' breaks the rule: " +
                                                 kHubIdRule});

        std::string module_id = l->config.module_id;
        if (rule_path) {
            // checked in translate_request, once the body is whole
        } else if (l->config.protocol == config::Protocol::coaps) {
            if (auto r = check_dtls_device(s, pm.device_id, "POST", &module_id)) return refuse(resp, key, peer, *r);
        } else {
            if (auto r = record_seen(pm.device_id)) return refuse(resp, key, peer, *r);
            if (auto rec = devices.find(pm.device_id); rec && !rec->module_id.empty()) module_id = rec->module_id;
        }

        TelemetryRequest tr;
        tr.device_id = pm.device_id;
        tr.module_id = module_id;
        tr.query = query_text;
        coap_opt_iterator_t it;
        if (coap_opt_t* cf = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &it))
            tr.content_format = coap_decode_var_bytes(coap_opt_value(cf), coap_opt_length(cf));
        size_t len = 0, offset = 0, total = 0;
        const std::uint8_t* data = nullptr;
        if (coap_get_data_large(req, &len, &data, &offset, &total))
            tr.body = std::string_view(reinterpret_cast<const char*>(data), len);
        std::string assembled;  // a Block1 upload's whole body, once its last block is in
        coap_block_t block1;
        if (coap_get_block(req, COAP_OPTION_BLOCK1, &block1)) {
            const BlockStep step = accept_block(s, req, target, block1, tr.body, assembled);
            if (step.refusal) return refuse(resp, key, peer, *step.refusal, step.max_age);
            if (!step.complete) {
                // libcoap turns a 2.xx for a block with more to come into 2.31 Continue.
                coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);
                return;
            }
            tr.body = assembled;
        }

        BuildResult built;
        if (rule_path) {
            auto translated = translate_request(s, *l, target, tr.content_format, tr.body);
            if (auto* r = std::get_if<Refusal>(&translated)) return refuse(resp, key, peer, *r);
            built.message = std::move(std::get<HubMessage>(translated));
        } else {
            built = build_telemetry(tr, ids);
        }
        if (built.refusal) return refuse(resp, key, peer, *built.refusal);

        coap_async_t* async = coap_register_async(s, req, 0);
        if (!async) return refuse(resp, key, peer, {5, 0, "internal", "cannot defer the answer"});
        auto p = std::make_shared<Pending>();
        p->dedup_key = key;
        p->session = coap_session_reference(s);
        p->token = token;
        pending[{s, token}] = p;
        dedup.insert(key, DedupCache::Clock::now());  // pending: retransmits get an empty ACK

        std::vector<HubMessage> batch;
        batch.push_back(std::move(*built.message));
        ingest.ingest(std::move(batch), [post = poster, w = weak_from_this(), p, peer](IngestResult r) {
            post->post([w, p, peer, r = std::move(r)]() mutable {
                if (auto me = w.lock()) me->on_ingested(p, peer, std::move(r));
            });
        });
        // Leaving the response empty makes libcoap send the empty ACK; the answer follows separately.
    }

    void on_ingested(const std::shared_ptr<Pending>& p, const std::string& peer, IngestResult r) {
        if (!running) return;
        auto& a = p->answer;
        a.done = true;
        if (r.outcome == IngestOutcome::durable && r.durable >= 1) {
            a.code_class = 2;
            a.code_detail = 4;
        } else {
            const bool no_room = r.outcome == IngestOutcome::no_room;
            a.code_class = 5;
            a.code_detail = no_room ? 3 : 0;
            a.max_age = no_room ? options.no_room_max_age : 0;
            a.payload = (no_room ? "store full, retry later: " : "not stored: ") + r.reason.substr(0, 160);
            count_refusal(no_room ? "no_room" : "store_failed");
            spdlog::warn("coap: {} answered {}: {}", peer, code_text(a.code_class, a.code_detail), a.payload);
        }
        answer_later(p);
    }

    // A deferred request's answer is in `p->answer`: remembered for retransmits, and the request is
    // re-run by libcoap (coap_async_trigger) so its handler sends it.
    void answer_later(const std::shared_ptr<Pending>& p) {
        auto& a = p->answer;
        a.done = true;
        p->done = true;
        if (!p->dedup_key.empty())
            if (auto* e = dedup.find(p->dedup_key, DedupCache::Clock::now())) *e = a;
        const coap_bin_const_t tok{p->token.size(), reinterpret_cast<const std::uint8_t*>(p->token.data())};
        if (coap_async_t* async = coap_find_async(p->session, tok)) {
            coap_async_trigger(async);
            process();  // the trigger is served by the next coap_io_process
        } else {
            auto it = pending.find({p->session, p->token});
            if (it != pending.end()) {
                coap_session_release(p->session);
                pending.erase(it);
            }
        }
    }
};

CoapServer::CoapServer(boost::asio::io_context& io, ServerOptions options, DeviceDirectory& devices,
                       IngestSink& ingest, metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(io, std::move(options), devices, ingest, registry)) {}

CoapServer::~CoapServer() { impl_->stop(); }

Status CoapServer::start() { return impl_->start(); }

void CoapServer::stop() { impl_->stop(); }

void CoapServer::deliver(std::string device_id, HubMessage m, std::function<void(DeliveryOutcome)> done) {
    asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), device_id = std::move(device_id), m = std::move(m),
                           done = std::move(done)]() mutable {
        auto self = w.lock();
        if (!self) return done(DeliveryOutcome::unreachable);
        self->on_deliver(device_id, std::move(m), std::move(done));
    });
}

void CoapServer::twin_desired(std::string device_id, std::string document, std::int64_t) {
    asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), device_id = std::move(device_id),
                           document = std::move(document)]() mutable {
        auto self = w.lock();
        if (self && self->running) self->on_twin_desired(device_id, std::move(document));
    });
}

void CoapServer::set_reachability_listener(std::function<void(const std::string&, bool)> fn) {
    impl_->reachability = std::move(fn);
}

std::vector<std::uint16_t> CoapServer::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& l : impl_->listeners) out.push_back(l.port);
    return out;
}

}  // namespace hubgate::coap
