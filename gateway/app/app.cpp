#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/app/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <unordered_set>
#include <spdlog/spdlog.h>

#include "adapters/coap/coap_server.hpp"
#include "adapters/mqtt/mqtt_server.hpp"
#include "gateway/c2d/c2d_relay.hpp"
#include "gateway/c2d/multi_deliverer.hpp"
#include "gateway/app/service_notify.hpp"
#include "gateway/app/store_ingest.hpp"
#include "gateway/app/version.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/discovery/advertiser.hpp"
#include "gateway/metrics/http_server.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/pairing/control_client.hpp"
#include "gateway/pairing/control_server.hpp"
#include "gateway/pairing/pairing.hpp"
#include "gateway/relay/relay.hpp"
#include "gateway/translate/translator.hpp"
#include "gateway/twins/gateway_twin.hpp"
#include "gateway/twins/methods.hpp"
#include "gateway/twins/twin_service.hpp"
#include "gateway/upstream/upstream_client.hpp"
#include "store/device_registry.hpp"
#include "store/store.hpp"

namespace hubgate::app {

namespace asio = boost::asio;

namespace {

// What the device directory holds, read at start and on SIGHUP.
struct DirectoryContents {
    std::vector<DeviceRecord> keyed;  // the config's [[device]] entries, then the registry's
    std::size_t registered = 0;       // how many of `keyed` came from the registry
    std::vector<std::string> seen;    // ids recorded on auth = "none" listeners
    std::vector<store::StoredRoute> routes;  // translated devices' last routes (for C2D)
};

// A config entry wins over a registered device with the same id. Read through the registry's own
// connection: the store's writer thread is not involved.
Result<DirectoryContents> read_directory(const config::Config& cfg) {
    auto reg = store::DeviceRegistry::open(cfg.store.path, false);
    if (!reg) return Error{reg.error()};
    auto registered = (*reg)->registered();
    if (!registered) return Error{registered.error()};
    auto seen = (*reg)->seen();
    if (!seen) return Error{seen.error()};
    auto routes = (*reg)->routes();
    if (!routes) return Error{routes.error()};
    DirectoryContents c;
    c.seen = std::move(seen.value());
    c.routes = std::move(routes.value());
    auto& out = c.keyed;
    out.reserve(cfg.devices.size() + registered->size());
    std::unordered_set<std::string> configured;
    for (const auto& d : cfg.devices) {
        out.push_back({d.id, d.key, d.module_id, d.children});
        configured.insert(d.id);
    }
    for (auto& d : *registered) {
        if (configured.contains(d.id)) {
            spdlog::warn("device {} is in {} and in the registry; the config's entry is used", d.id, cfg.file);
            continue;
        }
        out.push_back({std::move(d.id), std::move(d.key), std::move(d.module_id), std::move(d.children)});
        ++c.registered;
    }
    return c;
}

// Routes as the translator holds them; an unreadable one is skipped (the device's next message
// writes it again).
std::unordered_map<std::string, translate::DeviceRoute> route_map(std::vector<store::StoredRoute>& stored) {
    std::unordered_map<std::string, translate::DeviceRoute> routes;
    for (auto& r : stored) {
        auto captures = translate::decode_captures(r.captures);
        if (!captures) continue;
        routes.emplace(r.device_id, translate::DeviceRoute{{std::move(r.rule), std::move(*captures)}, std::move(r.via)});
    }
    return routes;
}

// The config's rules, compiled; load_config() has already checked them, so null only on a bug.
std::shared_ptr<const translate::RuleSet> compile_rules(const config::Config& cfg) {
    std::vector<std::string> names;
    for (const auto& l : cfg.listeners)
        if (!l.name.empty()) names.push_back(l.name);
    std::vector<translate::CompileError> errors;
    auto rules = translate::RuleSet::compile(cfg.rules, names, cfg.gateway.id, errors);
    for (const auto& e : errors) spdlog::error("{}:{}: {}", cfg.file, e.line, e.what);
    return rules;
}

}  // namespace

struct App::Impl {
    explicit Impl(config::Config c) : cfg(std::move(c)) {}

    int run();
    void wait_for_signals();
    void reload();
    void shutdown();
    void watchdog_tick();
    void arm_test_wedge();
    void arm_test_pair_signal();

    config::Config cfg;
    metrics::Registry registry;
    asio::io_context io{1};
    DeviceDirectory devices;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<StoreIngest> ingest;
    std::unique_ptr<translate::Translator> translator;
    std::unique_ptr<twins::TwinService> twins;  // device twins (docs/twins.md)
    std::unique_ptr<twins::GatewayTwin> gateway_twin;  // the gateway's own twin upstream
    std::unique_ptr<mqtt::MqttServer> mqtt;
    std::unique_ptr<coap::CoapServer> coap;
    std::unique_ptr<upstream::UpstreamClient> upstream;
    std::unique_ptr<relay::Relay> relay;
    std::unique_ptr<c2d::MultiDeliverer> deliverers;
    std::unique_ptr<c2d::C2dRelay> c2d;
    std::unique_ptr<metrics::HttpServer> http;
    std::unique_ptr<discovery::Advertiser> advertiser;  // DNS-SD; null when off or nothing to advertise
    // Pairing (docs/pairing.md): enrollment groups, the window, pending devices, the control socket
    // that `hubgate pair` and `devices pending|approve` talk to, and the registry it writes to.
    std::unique_ptr<pairing::Pairing> pairing;
    std::unique_ptr<pairing::ControlServer> control;
    std::unique_ptr<store::DeviceRegistry> pairing_registry;
    Status register_paired(const pairing::NewDevice& d);
    std::unique_ptr<asio::signal_set> signals;
    // systemd's watchdog (WATCHDOG_USEC; zero when not run under a unit with WatchdogSec=).
    std::chrono::microseconds watchdog_usec{0};
    std::unique_ptr<asio::steady_timer> watchdog;
    bool writer_stale_logged = false;
    std::unique_ptr<asio::steady_timer> test_wedge;
    std::unique_ptr<asio::signal_set> test_pair_signal;  // arm_test_pair_signal()
    bool test_pair_open = false;
    bool stopping = false;
};

App::App(config::Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
App::~App() = default;
int App::run() { return impl_->run(); }

int App::Impl::run() {
    spdlog::info("hubgate {} starting: {}", kVersion, cfg.summary());
    registry.gauge("hubgate_build_info", "hubgate version (value is always 1)", {{"version", kVersion}}).set(1);

    std::error_code ec;
    std::filesystem::create_directories(cfg.gateway.data_dir, ec);
    if (ec) {
        spdlog::error("cannot create data_dir {}: {}", cfg.gateway.data_dir, ec.message());
        return 1;
    }

    store::Options store_opts;
    store_opts.limits = cfg.store;
    if (const auto period = service_watchdog_period(); period.count() > 0) {
        watchdog_usec = period;
        // The idle writer reports in well within the staleness bound watchdog_tick() applies.
        store_opts.heartbeat_interval = std::min(store_opts.heartbeat_interval,
            std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_usec / 4)));
    }
    auto opened = store::Store::open(std::move(store_opts), registry);
    if (!opened) {
        spdlog::error("cannot open store {}: {}", cfg.store.path, opened.error());
        return 1;
    }
    store = std::move(opened.value());

    auto dir = read_directory(cfg);
    if (!dir) {
        spdlog::error("cannot read the device registry: {}", dir.error());
        store->close();
        return 1;
    }
    spdlog::info("devices: {} from the config, {} from the registry, {} seen on open listeners (at most {})",
                 cfg.devices.size(), dir->registered, dir->seen.size(), cfg.gateway.max_seen_devices);
    devices.replace_static(std::move(dir->keyed));
    // C2D: ids first seen on auth = "none" listeners are persisted, so commands reach them after a
    // restart.
    devices.replace_seen(dir->seen);
    devices.set_seen_limit(cfg.gateway.max_seen_devices);
    ingest = std::make_unique<StoreIngest>(*store);

    // Upstream: the hub connection and the relay that drains the store into it. The relay starts
    // first so it hears the first connect and drains a backlog from before a restart at once.
    relay::RelayOptions relay_opts;
    relay_opts.batch = cfg.upstream.batch;
    relay_opts.max_batch_bytes = cfg.upstream.max_batch_bytes;
    relay_opts.max_batch_delay = std::chrono::milliseconds(cfg.upstream.max_batch_delay_ms);
    upstream::ClientOptions up_opts;
    up_opts.upstream = cfg.upstream;
    up_opts.gateway_id = cfg.gateway.id;
    up_opts.max_inflight = std::max(relay_opts.window, relay_opts.unbatched_window);
    up_opts.fast_retry = std::chrono::seconds(cfg.upstream.fast_retry_seconds);
    up_opts.backoff_max = std::chrono::milliseconds(cfg.upstream.backoff_max_ms);
    upstream = std::make_unique<upstream::UpstreamClient>(std::move(up_opts), registry);
    relay = std::make_unique<relay::Relay>(*store, *upstream, relay_opts, registry);
    if (!relay->start()) {
        store->close();
        return 1;
    }
    // Translation rules for commodity devices, shared by the adapters (io thread).
    translator = std::make_unique<translate::Translator>(registry);
    translator->set_rules(compile_rules(cfg));
    translator->restore_routes(route_map(dir->routes));
    // A changed route is persisted, so C2D reaches a device on its command topic after a restart.
    translator->set_route_listener([this](const std::string& device, const translate::DeviceRoute& r) {
        store->device_route({device, r.route.rule, translate::encode_captures(r.route.captures), r.via});
    });
    translator->set_child_policy(
        [this](std::string_view bridge, std::string_view device) { return devices.may_speak_for(bridge, device); });
    if (!cfg.rules.empty()) spdlog::info("translate: {} rules", cfg.rules.size());

    pairing = std::make_unique<pairing::Pairing>(io, cfg.pairing, cfg.enrollments, registry);
    pairing->set_registrar([this](const pairing::NewDevice& d) { return register_paired(d); });
    pairing->set_known([this](std::string_view id) {
        auto rec = devices.find(id);
        return rec && !rec->key.empty();
    });
    if (!cfg.enrollments.empty()) spdlog::info("pairing: {} enrollment groups; window closed", cfg.enrollments.size());

    // Device adapters: each is one folder and a few lines here (STYLE.md).
    mqtt::ServerOptions mqtt_opts;
    mqtt_opts.listeners = cfg.listeners;
    mqtt_opts.translator = translator.get();
    mqtt_opts.pairing = pairing.get();
    twins = std::make_unique<twins::TwinService>(*store, &registry);
    mqtt_opts.twins = twins.get();
    mqtt = std::make_unique<mqtt::MqttServer>(io, std::move(mqtt_opts), devices, *ingest, registry);
    // A desired change committed to the store reaches the device if it is connected and subscribed.
    twins->set_desired_listener([this](const std::string& device, std::string body, std::int64_t version) {
        mqtt->twin_desired(device, std::move(body), version);
    });
    // New seen ids are persisted by the store; the C2D relay hooks the upstream listener before the
    // upstream connects, so messages a broker kept for the gateway are not acknowledged unseen.
    devices.set_seen_listener([this](const std::string& id) { store->device_seen(id); });
    coap::ServerOptions coap_opts;
    coap_opts.listeners = cfg.listeners;
    coap_opts.lock_timeout_seconds = cfg.c2d.lock_timeout_seconds;
    coap_opts.translator = translator.get();
    coap_opts.pairing = pairing.get();
    coap_opts.twins = twins.get();
    coap = std::make_unique<coap::CoapServer>(io, std::move(coap_opts), devices, *ingest, registry);
    // CoAP observers of devices/{id}/twin/desired get the whole document after each change.
    twins->set_desired_document_listener([this](const std::string& device, std::string document, std::int64_t version) {
        coap->twin_desired(device, std::move(document), version);
    });
    // A device is served C2D by the adapter it is reachable on: MQTT (subscribed) first, then CoAP.
    deliverers = std::make_unique<c2d::MultiDeliverer>(std::vector<C2dDeliverer*>{mqtt.get(), coap.get()});
    c2d = std::make_unique<c2d::C2dRelay>(io, *store, *upstream, *deliverers, devices, cfg.c2d, registry);
    // A rule's c2d_topic that needs a property the message lacks rejects it with that reason.
    c2d->set_precheck([this](const HubMessage& m) -> std::optional<std::string> {
        auto topic = translator->c2d_topic(m.device_id, m);
        if (topic && !*topic) return topic->error();
        return std::nullopt;
    });
    c2d->start();
    // The gateway's own twin (docs/twins.md): desired changes for local devices arrive in it
    // (`desired.devices.<D>`, and the GET on every connect), their reported ones go up in it.
    twins::UpstreamTwinPort twin_port;
    twin_port.publish = [this](const std::string& topic, std::string payload, std::function<void(bool)> done,
                               bool data) { return upstream->publish(topic, std::move(payload), std::move(done), data); };
    twin_port.topic_base = upstream->topic_base();
    twin_port.delivered_on_puback = cfg.upstream.profile == config::UpstreamProfile::mqtt;
    gateway_twin = std::make_unique<twins::GatewayTwin>(*twins, *store, std::move(twin_port), twins::GatewayTwinOptions{},
                                                        registry);
    twins->set_reported_listener([this](const std::string&) { gateway_twin->reported_changed(); });
    upstream->set_twin_listener([this](const std::string& body) { gateway_twin->desired_patch(body); });
    upstream->set_twin_response_listener([this](int status, const std::string& rid, const std::string& body) {
        gateway_twin->response(status, rid, body);
    });
    upstream->add_state_listener([this](bool up, std::uint64_t epoch) { gateway_twin->connection(up, epoch); });
    gateway_twin->start();
    // Direct methods: the gateway's `invoke` relays to the local device (docs/twins.md).
    const auto method_calls = [this](const char* result) {
        return &registry.counter("hubgate_method_calls_total",
                                 "Direct methods invoked through the gateway's invoke, by outcome", {{"result", result}});
    };
    struct MethodCounters {
        metrics::Counter *answered, *not_connected, *timeout, *bad_request;
    };
    const MethodCounters calls{method_calls("answered"), method_calls("not_connected"), method_calls("timeout"),
                               method_calls("bad_request")};
    upstream->set_method_listener([this, calls](const std::string& name, const std::string& rid, const std::string& body) {
        auto answer = [this, rid](int status, std::string text) {
            const std::string topic =
                upstream->topic_base() + "$iothub/methods/res/" + std::to_string(status) + "/?$rid=" + rid;
            if (!upstream->publish(topic, std::move(text), [](bool) {}))
                spdlog::warn("methods: the answer to request {} could not be sent upstream (not connected)", rid);
        };
        if (name != "invoke") {
            calls.bad_request->inc();
            answer(404, twins::invoke_error(404, "the gateway's only method is 'invoke'"));
            return;
        }
        auto req = twins::parse_invoke(body);
        if (!req) {
            calls.bad_request->inc();
            answer(400, twins::invoke_error(400, req.error()));
            return;
        }
        const std::string device = req->device_id;
        const std::string method = req->method_name;
        const long long ms = req->timeout.count();
        mqtt->invoke_method(req->device_id, req->method_name, std::move(req->payload), req->timeout,
                            [answer, calls, device, method, ms](int status, std::string payload) {
                                if (status == 404) {
                                    calls.not_connected->inc();
                                    answer(404, twins::invoke_error(404, "device " + device + " is not connected or has no method handler"));
                                } else if (status == 504) {
                                    calls.timeout->inc();
                                    answer(504, twins::invoke_error(504, "device " + device + " did not answer " + method +
                                                                             " within " + std::to_string(ms) + " ms"));
                                } else {
                                    calls.answered->inc();
                                    answer(status, twins::invoke_answer(status, payload));
                                }
                            });
    });
    upstream->start();

    if (auto err = mqtt->start()) {
        spdlog::error("{}", err->reason);
        c2d->stop();
        relay->stop();
        upstream->stop();
        store->close();
        return 1;
    }

    if (auto err = coap->start()) {
        spdlog::error("{}", err->reason);
        mqtt->stop();
        c2d->stop();
        relay->stop();
        upstream->stop();
        store->close();
        return 1;
    }

    http = std::make_unique<metrics::HttpServer>(io, registry);
    if (auto err = http->listen(cfg.metrics.bind.host, cfg.metrics.bind.port)) {
        spdlog::error("{}", err->reason);
        store->close();
        return 1;
    }
    spdlog::info("metrics: serving /metrics and /healthz on {}", cfg.metrics.bind.to_string());
    control = std::make_unique<pairing::ControlServer>(io, *pairing, pairing::control_socket_path(cfg));
    if (auto err = control->start()) {
        spdlog::error("{}", err->reason);
        store->close();
        return 1;
    }


    // DNS-SD (docs/discovery.md): the listeners not on loopback, through avahi-daemon, on this loop.
    advertiser = discovery::advertise_listeners(io, cfg, discovery::listener_ports(cfg.listeners, mqtt->ports(), coap->ports()),
                                                registry);
    // TXT pair=open|closed follows the pairing window (opened, closed, expired).
    if (advertiser) pairing->window().on_change([this](bool open) { advertiser->set_pair_open(open); });

    wait_for_signals();
    notify_service_manager("READY=1");
    spdlog::info("ready");
    if (watchdog_usec.count() > 0) {
        spdlog::info("watchdog: pinging systemd every {} ms while the event loop and the store writer make progress",
                     std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_usec / 2).count());
        watchdog = std::make_unique<asio::steady_timer>(io);
        watchdog_tick();
    }
    arm_test_wedge();
    arm_test_pair_signal();
    io.run();
    return 0;
}

// WATCHDOG=1 every WATCHDOG_USEC/2 from the event loop (so a wedged loop sends none), and only if
// the store writer went round its loop within that time too (a wedged writer, e.g. stuck in a
// commit, stops the pings; systemd then kills and restarts the gateway).
void App::Impl::watchdog_tick() {
    if (stopping) return;
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(watchdog_usec / 2);
    const auto age = std::chrono::steady_clock::now() - store->writer_heartbeat();
    if (age <= period) {
        notify_service_manager("WATCHDOG=1");
        writer_stale_logged = false;
    } else if (!writer_stale_logged) {
        writer_stale_logged = true;
        spdlog::error("watchdog: the store writer has made no progress for {} ms; not pinging systemd",
                      std::chrono::duration_cast<std::chrono::milliseconds>(age).count());
    }
    watchdog->expires_after(period);
    watchdog->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) watchdog_tick();
    });
}

// Test hook (integration tests of the watchdog): HUBGATE_TEST_WEDGE_STORE_AFTER_MS=N makes the store
// writer block forever N ms after READY, as a writer stuck in I/O would. The gateway then has to be
// killed. Compiled only into builds with HUBGATE_TEST_HOOKS (on with the tests, off in packages).
void App::Impl::arm_test_wedge() {
#ifdef HUBGATE_TEST_HOOKS
    const char* after = std::getenv("HUBGATE_TEST_WEDGE_STORE_AFTER_MS");
    if (!after) return;
    test_wedge = std::make_unique<asio::steady_timer>(io, std::chrono::milliseconds(std::atoll(after)));
    test_wedge->async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        spdlog::warn("test hook: wedging the store writer");
        store->remove({}, [] {
            for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
        });
    });
#endif
}

// Test hook (tests/integration/discovery_test.sh): HUBGATE_TEST_PAIR_SIGNAL=1 makes SIGUSR2 toggle
// the DNS-SD TXT pair= flag, for testing the advertiser without the pairing window.
void App::Impl::arm_test_pair_signal() {
#ifdef HUBGATE_TEST_HOOKS
    if (!advertiser || (!test_pair_signal && !std::getenv("HUBGATE_TEST_PAIR_SIGNAL"))) return;
    if (!test_pair_signal) test_pair_signal = std::make_unique<asio::signal_set>(io, SIGUSR2);
    test_pair_signal->async_wait([this](const boost::system::error_code& ec, int) {
        if (ec || stopping) return;
        test_pair_open = !test_pair_open;
        spdlog::warn("test hook: DNS-SD pair={}", test_pair_open ? "open" : "closed");
        advertiser->set_pair_open(test_pair_open);
        arm_test_pair_signal();
    });
#endif
}

void App::Impl::wait_for_signals() {
    if (!signals) {
        signals = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM, SIGHUP);
    }
    signals->async_wait([this](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            reload();
            wait_for_signals();
            return;
        }
        spdlog::info("received {}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        shutdown();
    });
}

void App::Impl::reload() {
    // Devices and rules are what SIGHUP reloads (DESIGN.md): the config's and the registry's
    // (`hubgate devices add/remove`). Listeners, store and upstream keep their settings until a
    // restart. A broken file or an unreadable registry changes nothing.
    auto loaded = config::load_config(cfg.file);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) spdlog::error("reload refused: {}", e.to_string());
        return;
    }
    auto next = cfg;
    next.devices = std::move(loaded.config->devices);
    next.enrollments = std::move(loaded.config->enrollments);
    next.rules = std::move(loaded.config->rules);
    auto dir = read_directory(next);
    if (!dir) {
        spdlog::error("reload refused: cannot read the device registry: {}", dir.error());
        return;
    }
    auto rules = compile_rules(next);
    if (!rules) {
        spdlog::error("reload refused: the rules do not compile");
        return;
    }
    cfg = std::move(next);
    translator->set_rules(std::move(rules));  // whole: a message sees the old set or the new one
    pairing->set_enrollments(cfg.enrollments);
    devices.replace_static(std::move(dir->keyed));
    devices.replace_seen(dir->seen);  // `hubgate devices remove` may have forgotten some
    // ... and their routes: a removed device is known again (and routed) at its next message.
    translator->restore_routes(route_map(dir->routes));
    spdlog::info("reloaded {}: {} devices from the config, {} from the registry, {} seen, {} rules", cfg.file,
                 cfg.devices.size(), dir->registered, dir->seen.size(), cfg.rules.size());
    // Connected devices that were removed or changed are cut off now, not at their next connect.
    // (CoAP checks a DTLS session's device on every request.)
    mqtt->recheck_devices();
}

// A device pairing registered: into the registry first (it survives a restart and the next
// reload keeps it), then the directory (it can connect now). Synchronous on the io thread: one
// small insert per newly paired device, which is rare.
Status App::Impl::register_paired(const pairing::NewDevice& d) {
    if (!pairing_registry) {
        auto reg = store::DeviceRegistry::open(cfg.store.path, false);
        if (!reg) return Error{reg.error()};
        pairing_registry = std::move(reg.value());
    }
    auto added = pairing_registry->add({d.id, d.key, d.module_id, 0, {}, d.enrollment});
    if (!added) return Error{added.error()};
    if (!*added) return Error{"device " + d.id + " is in the registry already (added meanwhile?); reload the gateway"};
    devices.add_keyed({d.id, d.key, d.module_id});
    return std::nullopt;
}

void App::Impl::shutdown() {
    if (stopping) return;
    stopping = true;
    notify_service_manager("STOPPING=1");
    if (watchdog) watchdog->cancel();
    if (test_wedge) test_wedge->cancel();
    if (test_pair_signal) test_pair_signal->cancel();
    // Order matters: stop taking new work, then let the store finish its commit in flight.
    if (http) http->stop();
    if (advertiser) advertiser->stop();  // withdrawn first: nobody is sent to a closing gateway
    if (control) control->stop();
    if (pairing) pairing->window().close();  // observers (DNS-SD) hear it close
    if (signals) signals->cancel();
    if (mqtt) mqtt->stop();  // no new messages
    if (coap) coap->stop();
    if (c2d) c2d->stop();    // gathered feedback goes into the store
    if (relay) relay->stop();  // no new publishes; unacknowledged ones are sent again next start
    if (upstream) upstream->stop();
    if (gateway_twin) gateway_twin->stop();  // after the upstream: no more answers or patches come
    if (store) store->close();  // finishes the commit in flight (and the deletes the hub acked)
    const auto st = store ? store->stats() : store::Stats{};
    spdlog::info("stopped: {} messages ({} bytes) stored for relay", st.messages, st.bytes);
    io.stop();
}

}  // namespace hubgate::app
