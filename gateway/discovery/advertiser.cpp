#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/discovery/advertiser.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include "gateway/discovery/asio_poll.hpp"
#include "gateway/discovery/avahi_api.hpp"
#include "gateway/metrics/registry.hpp"

namespace hubgate::discovery {

namespace asio = boost::asio;

namespace {

AvahiIfIndex interface_of(const Placement& p) {
    return p.kind == Placement::Kind::one_interface ? static_cast<AvahiIfIndex>(p.index) : AVAHI_IF_UNSPEC;
}

AvahiProtocol protocol_of(const Placement& p) {
    return p.family == AF_INET ? AVAHI_PROTO_INET : p.family == AF_INET6 ? AVAHI_PROTO_INET6 : AVAHI_PROTO_UNSPEC;
}

std::string where(const Placement& p) {
    const char* family = p.family == AF_INET ? " (IPv4)" : p.family == AF_INET6 ? " (IPv6)" : "";
    return (p.kind == Placement::Kind::one_interface ? "on " + p.interface : std::string("on all interfaces")) + family;
}

}  // namespace

struct Advertiser::Impl {
    struct Entry {
        Impl* owner = nullptr;
        PlannedService service;
        std::string name;  // the instance name in use (another after a collision)
        AvahiEntryGroup* group = nullptr;
        bool established = false;
    };

    Impl(asio::io_context& c, AdvertiserOptions o, metrics::Registry& registry)
        : av(avahi_api(&av_missing)),
          io(c),
          poll(c),
          options(std::move(o)),
          retry(c),
          registered(registry.gauge("hubgate_discovery_registered",
                                    "DNS-SD services established with avahi-daemon (announced on the network)")),
          planned(registry.gauge("hubgate_discovery_services", "DNS-SD services the gateway advertises (its listeners not on loopback)")),
          connected(registry.gauge("hubgate_discovery_daemon_connected",
                                   "1 while the gateway talks to a running avahi-daemon over D-Bus")),
          restarts(registry.counter("hubgate_discovery_client_restarts_total",
                                    "Avahi clients made again after the daemon or the bus went away")),
          collisions(registry.counter("hubgate_discovery_name_collisions_total",
                                      "Instance names taken by someone else, replaced by an alternative")) {
        entries.reserve(options.services.size());  // group callbacks hold Entry pointers: never reallocate
        for (auto& s : options.services) {
            Entry e;
            e.owner = this;
            e.name = s.name;
            e.service = std::move(s);
            entries.push_back(std::move(e));
        }
        planned.set(static_cast<double>(entries.size()));
    }

    std::string av_missing;  // why av is null: dlerror()'s text
    const AvahiApi* av;      // libavahi-client, loaded now; null when it is not installed
    asio::io_context& io;
    AsioPoll poll;  // before client: Avahi frees its watches into it
    AdvertiserOptions options;
    std::vector<Entry> entries;
    AvahiClient* client = nullptr;
    asio::steady_timer retry;
    std::chrono::steady_clock::time_point last_connect{};
    bool pair_open = false;
    bool running = false;
    bool outage_logged = false;  // one warning per outage, one info when it ends
    metrics::Gauge& registered;
    metrics::Gauge& planned;
    metrics::Gauge& connected;
    metrics::Counter& restarts;
    metrics::Counter& collisions;

    void connect();
    void schedule_connect(std::chrono::milliseconds after);
    void drop_client();
    void on_client(AvahiClient* c, AvahiClientState state);
    void on_group(Entry& e, AvahiEntryGroup* g, AvahiEntryGroupState state);
    void create(Entry& e);
    void reset_groups();
    void apply_pair(bool open);
    void count();
    AvahiStringList* txt(const Entry& e) const;

    static void client_cb(AvahiClient* c, AvahiClientState state, void* userdata) {
        static_cast<Impl*>(userdata)->on_client(c, state);
    }
    static void group_cb(AvahiEntryGroup* g, AvahiEntryGroupState state, void* userdata) {
        auto* e = static_cast<Entry*>(userdata);
        e->owner->on_group(*e, g, state);
    }
};

AvahiStringList* Advertiser::Impl::txt(const Entry& e) const {
    AvahiStringList* l = nullptr;
    // avahi_string_list_add prepends: add in reverse so that the wire order is gw, auth, pair.
    const auto items = txt_items(options.gateway_id, e.service.auth, pair_open);
    for (auto it = items.rbegin(); it != items.rend(); ++it) l = av->string_list_add(l, it->c_str());
    return l;
}

void Advertiser::Impl::count() {
    double n = 0;
    for (const auto& e : entries) n += e.established ? 1 : 0;
    registered.set(n);
}

void Advertiser::Impl::connect() {
    if (!running) return;
    if (!av) {  // not installed: nothing to retry until the gateway restarts
        spdlog::error("discovery: cannot load libavahi-client ({}); advertising nothing (install libavahi-client3, "
                      "or set [discovery] mdns = false)",
                      av_missing);
        return;
    }
    last_connect = std::chrono::steady_clock::now();
    int err = 0;
    // NO_FAIL: a bus without avahi-daemon is waited for (CONNECTING); no bus at all still fails here.
    AvahiClient* c = av->client_new(poll.get(), AVAHI_CLIENT_NO_FAIL, &Impl::client_cb, this, &err);
    if (!c) {
        client = nullptr;
        for (auto& e : entries) e.group = nullptr, e.established = false;
        count();
        connected.set(0);
        if (!outage_logged) {
            outage_logged = true;
            spdlog::warn("discovery: cannot reach avahi-daemon over D-Bus ({}); advertising nothing, trying again "
                         "every {} s", av->strerror(err), options.retry.count() / 1000.0);
        }
        schedule_connect(options.retry);
        return;
    }
    client = c;
}

void Advertiser::Impl::schedule_connect(std::chrono::milliseconds after) {
    retry.expires_after(after);
    retry.async_wait([this](const boost::system::error_code& ec) {
        if (ec || !running) return;
        if (client) {
            drop_client();
            restarts.inc();
        }
        connect();
    });
}

void Advertiser::Impl::drop_client() {
    if (!client) return;
    av->client_free(client);  // frees its entry groups; the daemon withdraws what they held
    client = nullptr;
    for (auto& e : entries) e.group = nullptr, e.established = false;
    count();
}

void Advertiser::Impl::on_client(AvahiClient* c, AvahiClientState state) {
    client = c;  // the first call comes from inside av->client_new()
    switch (state) {
        case AVAHI_CLIENT_S_RUNNING: {
            connected.set(1);
            const char* host = av->client_get_host_name_fqdn(c);
            if (outage_logged)
                spdlog::info("discovery: avahi-daemon is back ({}); advertising {} services again", host ? host : "?",
                             entries.size());
            else
                spdlog::info("discovery: avahi-daemon running ({}); advertising {} services", host ? host : "?",
                             entries.size());
            outage_logged = false;
            for (auto& e : entries) create(e);
            break;
        }
        case AVAHI_CLIENT_S_REGISTERING:
        case AVAHI_CLIENT_S_COLLISION:
            // The daemon's host name changes: withdraw now, register again at S_RUNNING.
            reset_groups();
            break;
        case AVAHI_CLIENT_CONNECTING:
            connected.set(0);
            if (!outage_logged) {
                outage_logged = true;
                spdlog::warn("discovery: no avahi-daemon on the D-Bus system bus; advertising nothing until it starts");
            }
            break;
        case AVAHI_CLIENT_FAILURE: {
            connected.set(0);
            for (auto& e : entries) e.group = nullptr, e.established = false;  // die with the client
            count();
            if (!outage_logged) {
                outage_logged = true;
                spdlog::warn("discovery: lost avahi-daemon ({}); advertising nothing until it is back",
                             av->strerror(av->client_errno(c)));
            }
            // Never free a client inside its own callback: a new one from the loop, at once unless
            // the last one failed within a second (then after the retry period).
            const bool recent = std::chrono::steady_clock::now() - last_connect < std::chrono::seconds(1);
            schedule_connect(recent ? options.retry : std::chrono::milliseconds(0));
            break;
        }
    }
}

void Advertiser::Impl::reset_groups() {
    for (auto& e : entries) {
        if (e.group) av->entry_group_reset(e.group);
        e.established = false;
    }
    count();
}

void Advertiser::Impl::create(Entry& e) {
    if (!client) return;
    if (!e.group) {
        e.group = av->entry_group_new(client, &Impl::group_cb, &e);
        if (!e.group) {
            spdlog::error("discovery: cannot make an entry group for \"{}\": {}", e.name,
                          av->strerror(av->client_errno(client)));
            return;
        }
    }
    if (!av->entry_group_is_empty(e.group)) return;
    const auto& s = e.service;
    for (int attempt = 0; attempt < 20; ++attempt) {
        AvahiStringList* l = txt(e);
        int r = av->entry_group_add_service_strlst(e.group, interface_of(s.where), protocol_of(s.where),
                                                   static_cast<AvahiPublishFlags>(0), e.name.c_str(), s.type.c_str(),
                                                   nullptr, nullptr, s.port, l);
        av->string_list_free(l);
        if (r == AVAHI_ERR_COLLISION) {  // a service on this machine has the name already
            char* alt = av->alternative_service_name(e.name.c_str());
            spdlog::warn("discovery: \"{}\" ({}) is taken on this machine; using \"{}\"", e.name, s.type, alt);
            e.name = alt;
            av->free(alt);
            collisions.inc();
            av->entry_group_reset(e.group);
            continue;
        }
        if (r >= 0) r = av->entry_group_commit(e.group);
        if (r < 0)
            spdlog::error("discovery: cannot advertise \"{}\" {} port {}: {}", e.name, s.type, s.port, av->strerror(r));
        return;
    }
}

void Advertiser::Impl::on_group(Entry& e, AvahiEntryGroup* g, AvahiEntryGroupState state) {
    e.group = g;  // may run before av->entry_group_new() has returned
    const auto& s = e.service;
    switch (state) {
        case AVAHI_ENTRY_GROUP_ESTABLISHED:
            e.established = true;
            spdlog::info("discovery: advertised \"{}\" {} port {} {} for listener {} (gw={} auth={} pair={})", e.name,
                         s.type, s.port, where(s.where), s.listener, options.gateway_id, s.auth,
                         pair_open ? "open" : "closed");
            break;
        case AVAHI_ENTRY_GROUP_COLLISION: {  // someone on the network has the name: take "NAME #2"
            char* alt = av->alternative_service_name(e.name.c_str());
            spdlog::warn("discovery: \"{}\" ({}) is taken on the network; using \"{}\"", e.name, s.type, alt);
            e.name = alt;
            av->free(alt);
            collisions.inc();
            e.established = false;
            av->entry_group_reset(g);
            create(e);
            break;
        }
        case AVAHI_ENTRY_GROUP_FAILURE:
            e.established = false;
            spdlog::error("discovery: advertising \"{}\" {} failed: {}", e.name, s.type,
                          av->strerror(av->client_errno(av->entry_group_get_client(g))));
            break;
        case AVAHI_ENTRY_GROUP_UNCOMMITED:
        case AVAHI_ENTRY_GROUP_REGISTERING:
            e.established = false;
            break;
    }
    count();
}

void Advertiser::Impl::apply_pair(bool open) {
    if (open == pair_open) return;
    pair_open = open;
    std::size_t updated = 0;
    for (auto& e : entries) {
        // An empty or missing group gets the new value when it is built.
        if (!e.group || av->entry_group_is_empty(e.group)) continue;
        AvahiStringList* l = txt(e);
        const int r = av->entry_group_update_service_txt_strlst(e.group, interface_of(e.service.where),
                                                                protocol_of(e.service.where),
                                                                static_cast<AvahiPublishFlags>(0), e.name.c_str(),
                                                                e.service.type.c_str(), nullptr, l);
        av->string_list_free(l);
        if (r < 0)
            spdlog::warn("discovery: cannot update the TXT of \"{}\": {}", e.name, av->strerror(r));
        else
            ++updated;
    }
    spdlog::info("discovery: TXT pair={} on {} of {} services", open ? "open" : "closed", updated, entries.size());
}

Advertiser::Advertiser(asio::io_context& io, AdvertiserOptions options, metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(io, std::move(options), registry)) {}

Advertiser::~Advertiser() { stop(); }

void Advertiser::start() {
    if (impl_->running || impl_->entries.empty()) return;
    impl_->running = true;
    impl_->connect();
}

void Advertiser::stop() {
    impl_->running = false;
    impl_->retry.cancel();
    impl_->drop_client();
    impl_->connected.set(0);
}

void Advertiser::set_pair_open(bool open) {
    asio::post(impl_->io, [weak = std::weak_ptr<Impl>(impl_), open] {
        if (auto me = weak.lock()) me->apply_pair(open);
    });
}

std::vector<std::string> Advertiser::describe() const {
    std::vector<std::string> out;
    for (const auto& e : impl_->entries) {
        const auto& s = e.service;
        out.push_back("\"" + e.name + "\" " + s.type + " port " + std::to_string(s.port) + " " + where(s.where) +
                      " (listener " + s.listener + ")");
    }
    return out;
}

std::unique_ptr<Advertiser> advertise_listeners(asio::io_context& io, const config::Config& cfg,
                                                const std::vector<std::uint16_t>& ports, metrics::Registry& registry) {
    if (!cfg.discovery.mdns) {
        spdlog::info("discovery: off ([discovery] mdns = false)");
        return nullptr;
    }
    auto plan = plan_services(cfg.listeners, ports, cfg.discovery.instance, cfg.gateway.id, system_interfaces());
    for (const auto& s : plan.skipped) spdlog::info("discovery: not advertising {}", s);
    if (plan.services.empty()) return nullptr;
    AdvertiserOptions o;
    o.services = std::move(plan.services);
    o.gateway_id = cfg.gateway.id;
    auto a = std::make_unique<Advertiser>(io, std::move(o), registry);
    for (const auto& line : a->describe()) spdlog::info("discovery: to advertise {}", line);
    a->start();
    return a;
}

}  // namespace hubgate::discovery
