#include "gateway/twins/gateway_twin.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/twins/twin_json.hpp"
#include "gateway/twins/twin_service.hpp"
#include "store/store.hpp"

namespace hubgate::twins {

namespace {

using Clock = std::chrono::steady_clock;

// The hub is asked to slow down or failed: wait at least this long before the same patch again.
constexpr auto kHubTroubleRetry = std::chrono::seconds(5);
// At most one line a minute about devices left out of the gateway's reported properties.
constexpr auto kOversizeLogInterval = std::chrono::minutes(1);
// Desired patches remembered while a GET is outstanding (to apply again over an older answer).
constexpr std::size_t kMaxPatchesDuringGet = 256;

const char* limit_name(Oversize::Limit l) { return l == Oversize::Limit::depth ? "depth" : "bytes"; }

}  // namespace

struct GatewayTwin::Impl : std::enable_shared_from_this<GatewayTwin::Impl> {
    Impl(TwinService& t, store::Store& s, UpstreamTwinPort p, GatewayTwinOptions o, metrics::Registry& r)
        : twins(t),
          store(s),
          port(std::move(p)),
          opts(o),
          pending_gauge(r.gauge("hubgate_twin_reported_pending",
                                "Local devices with reported changes the hub has not acknowledged yet")),
          document_gauge(r.gauge("hubgate_twin_reported_bytes",
                                 "Size of the gateway's reported properties at the hub (devices section, bytes)")) {
        const char* name = "hubgate_twin_requests_total";
        const char* help = "Twin requests of local devices and of the gateway's own twin upstream, by outcome";
        for (const char* result : {"ok", "error", "timeout", "failed"}) {
            get_counters.emplace(result, &r.counter(name, help, {{"op", "upstream_get"}, {"result", result}}));
            patch_counters.emplace(result, &r.counter(name, help, {{"op", "upstream_reported"}, {"result", result}}));
        }
        for (const auto l : {Oversize::Limit::bytes, Oversize::Limit::depth})
            oversize_counters.emplace(l, &r.counter("hubgate_twin_oversize_total",
                                                    "Reported changes of local devices left out of the gateway's twin "
                                                    "(IoT Hub's 32 KB or 10 levels)",
                                                    {{"side", "reported"}, {"limit", limit_name(l)}}));
        const char* dname = "hubgate_twin_desired_changes_total";
        const char* dhelp = "Local devices whose desired properties changed from the gateway's twin, by source";
        desired_from_patch = &r.counter(dname, dhelp, {{"source", "patch"}});
        desired_from_get = &r.counter(dname, dhelp, {{"source", "get"}});
    }

    TwinService& twins;
    store::Store& store;
    UpstreamTwinPort port;
    GatewayTwinOptions opts;
    metrics::Gauge& pending_gauge;
    metrics::Gauge& document_gauge;
    std::unordered_map<std::string, metrics::Counter*> get_counters, patch_counters;
    std::unordered_map<Oversize::Limit, metrics::Counter*> oversize_counters;
    metrics::Counter* desired_from_patch = nullptr;
    metrics::Counter* desired_from_get = nullptr;

    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> events;
    bool stopping = false;
    std::thread worker;

    // The outstanding GET, shared with Paho's thread (response(), desired_patch()).
    std::mutex get_mu;
    std::string get_rid;
    std::vector<std::pair<std::int64_t, std::string>> patches_during_get;  // ($version, body)
    bool patches_overflow = false;

    // The worker thread's own state.
    enum class Phase { idle, reading, publishing, answering, marking };
    bool connected = false;
    bool dirty = true;  // the first connect reads the backlog (changes from before a restart)
    Phase phase = Phase::idle;
    std::uint64_t round = 0;  // a new one per backlog read and per connection change: late callbacks are dropped
    std::uint64_t next_rid = 1;
    std::string patch_rid;
    std::vector<store::ReportedSent> in_flight;
    bool in_flight_more = false;
    std::size_t in_flight_document = 0;
    std::size_t last_pending = 0;
    std::optional<Clock::time_point> patch_deadline, retry_at, get_deadline, gauge_at;
    std::string get_deadline_rid;
    bool get_to_send = false;  // the GET could not go out: sent again at retry_at
    bool get_timeout_logged = false;
    std::unordered_map<std::string, std::int64_t> oversize_seen;  // device -> version counted
    std::optional<Clock::time_point> oversize_logged_at;

    void post(std::function<void()> f) {
        {
            std::lock_guard lock(mu);
            if (stopping) return;
            events.push_back(std::move(f));
        }
        cv.notify_one();
    }

    std::optional<Clock::time_point> next_deadline() const {
        std::optional<Clock::time_point> next;
        for (const auto& d : {patch_deadline, retry_at, get_deadline, gauge_at})
            if (d && (!next || *d < *next)) next = d;
        return next;
    }

    void run() {
        std::unique_lock lock(mu);
        for (;;) {
            if (stopping) return;
            if (!events.empty()) {
                auto f = std::move(events.front());
                events.pop_front();
                lock.unlock();
                f();
                lock.lock();
                continue;
            }
            const auto next = next_deadline();
            if (next && Clock::now() >= *next) {
                lock.unlock();
                on_deadlines(Clock::now());
                lock.lock();
                continue;
            }
            if (next)
                cv.wait_until(lock, *next);
            else
                cv.wait(lock);
        }
    }

    // ---- reported properties upstream ------------------------------------------------------------

    void pump() {
        if (phase != Phase::idle || !dirty) return;
        if (!connected) {
            // Sent on the next connect; meanwhile the gauge follows (at most once a second).
            if (!gauge_at) gauge_at = Clock::now() + std::chrono::seconds(1);
            return;
        }
        if (retry_at && Clock::now() < *retry_at) return;
        dirty = false;
        phase = Phase::reading;
        const auto r = ++round;
        // The store's callbacks hold the Impl: one may come after the GatewayTwin is gone (post()
        // drops it then).
        store.twin_reported_backlog([self = shared_from_this(), r](std::optional<store::ReportedBacklog> b) {
            self->post([impl = self.get(), r, b = std::move(b)]() mutable { impl->on_backlog(r, std::move(b)); });
        });
    }

    void retry_later(std::chrono::milliseconds after) {
        dirty = true;
        retry_at = Clock::now() + after;
    }

    void on_backlog(std::uint64_t r, std::optional<store::ReportedBacklog> b) {
        if (r != round) return;
        phase = Phase::idle;
        if (!b) {
            spdlog::warn("gateway twin: cannot read the reported backlog from the store; trying again");
            retry_later(opts.retry_after);
            return;
        }
        ReportedPlan plan = plan_reported(*b, opts.max_reported_bytes);
        note_oversize(plan.oversize);
        last_pending = b->pending.size();
        pending_gauge.set(static_cast<double>(last_pending));
        if (!connected) {
            dirty = true;
            return;
        }
        if (plan.patch.empty()) {
            if (!plan.sent.empty()) mark(std::move(plan.sent), plan.more, plan.document_bytes);
            else document_gauge.set(static_cast<double>(plan.document_bytes));
            return;
        }
        patch_rid = "r" + std::to_string(next_rid++);
        in_flight = std::move(plan.sent);
        in_flight_more = plan.more;
        in_flight_document = plan.document_bytes;
        phase = Phase::publishing;
        const std::string topic = port.topic_base + "$iothub/twin/PATCH/properties/reported/?$rid=" + patch_rid;
        const std::size_t bytes = plan.patch.size();
        const bool sent = port.publish(
            topic, std::move(plan.patch),
            [self = shared_from_this(), r](bool acked) {
                self->post([impl = self.get(), r, acked] { impl->on_puback(r, acked); });
            },
            true);
        if (!sent) {
            // Not connected any more, or the relay's window is full: soon again.
            phase = Phase::idle;
            retry_later(opts.retry_after);
            return;
        }
        spdlog::debug("gateway twin: reported patch {} ({} bytes, {} devices) sent", patch_rid, bytes, in_flight.size());
    }

    void on_puback(std::uint64_t r, bool acked) {
        if (r != round || phase != Phase::publishing) return;
        if (!acked) {
            patch_counters["failed"]->inc();
            phase = Phase::idle;
            retry_later(opts.retry_after);
            return;
        }
        if (port.delivered_on_puback) {
            patch_counters["ok"]->inc();
            mark(std::move(in_flight), in_flight_more, in_flight_document);
            return;
        }
        phase = Phase::answering;  // IoT Hub: delivered on its 204
        patch_deadline = Clock::now() + opts.patch_timeout;
    }

    void on_answer(const std::string& rid, int status, const std::string& body) {
        // A 204 may overtake the PUBACK's completion: either one ends the wait.
        if (rid != patch_rid || (phase != Phase::publishing && phase != Phase::answering)) return;
        patch_deadline.reset();
        if (status >= 200 && status < 300) {
            patch_counters["ok"]->inc();
            mark(std::move(in_flight), in_flight_more, in_flight_document);
            return;
        }
        patch_counters["error"]->inc();
        phase = Phase::idle;
        ++round;
        if (status == 429 || status >= 500) {
            spdlog::warn("gateway twin: the hub answered {} to reported patch {}; sending it again in {} s", status, rid,
                         std::chrono::duration_cast<std::chrono::seconds>(kHubTroubleRetry).count());
            retry_later(std::max<std::chrono::milliseconds>(opts.retry_after, kHubTroubleRetry));
        } else {
            // Refused: the same patch again would be refused again. The devices stay pending; the
            // next change or connect tries again.
            spdlog::warn("gateway twin: the hub refused reported patch {} ({}): {}", rid, status, body.substr(0, 300));
        }
    }

    void mark(std::vector<store::ReportedSent> sent, bool more, std::size_t document) {
        phase = Phase::marking;
        const auto r = round;
        const std::size_t n = sent.size();
        store.twin_reported_sent(std::move(sent), [self = shared_from_this(), r, n, more, document](bool ok) {
            self->post([impl = self.get(), r, n, more, document, ok] { impl->on_marked(r, ok, n, more, document); });
        });
    }

    void on_marked(std::uint64_t r, bool ok, std::size_t n, bool more, std::size_t document) {
        if (r != round) return;
        phase = Phase::idle;
        if (!ok) {
            // Delivered but not recorded: the next patch carries the same again (harmless).
            spdlog::warn("gateway twin: cannot record the delivered reported patch in the store; it will be sent again");
            retry_later(opts.retry_after);
            return;
        }
        last_pending = last_pending >= n ? last_pending - n : 0;
        pending_gauge.set(static_cast<double>(last_pending));
        document_gauge.set(static_cast<double>(document));
        if (more) dirty = true;
        pump();
    }

    void note_oversize(const std::vector<Oversize>& list) {
        for (const auto& o : list) {
            auto [it, fresh] = oversize_seen.try_emplace(o.id, o.version);
            if (!fresh && it->second == o.version) continue;  // this change was counted already
            it->second = o.version;
            oversize_counters[o.limit]->inc();
            const auto now = Clock::now();
            if (oversize_logged_at && now - *oversize_logged_at < kOversizeLogInterval) continue;
            oversize_logged_at = now;
            if (o.limit == Oversize::Limit::bytes)
                spdlog::warn("gateway twin: reported properties of device {} (version {}) not sent upstream: the "
                             "gateway's reported properties would be {} bytes, over the hub's {} (counted in "
                             "hubgate_twin_oversize_total; this line at most once a minute)",
                             o.id, o.version, o.bytes, opts.max_reported_bytes);
            else
                spdlog::warn("gateway twin: reported properties of device {} (version {}) not sent upstream: they would "
                             "nest {} levels deep in the gateway's twin, over the hub's {} (counted in "
                             "hubgate_twin_oversize_total; this line at most once a minute)",
                             o.id, o.version, o.depth, kMaxDepth);
        }
    }

    void refresh_gauge() {
        store.twin_reported_backlog([self = shared_from_this()](std::optional<store::ReportedBacklog> b) {
            if (!b) return;
            const std::size_t n = b->pending.size();
            self->post([impl = self.get(), n] {
                if (impl->connected) return;  // a round under way says better
                impl->last_pending = n;
                impl->pending_gauge.set(static_cast<double>(n));
            });
        });
    }

    // ---- connection and the GET ------------------------------------------------------------------

    void on_connection(bool up) {
        connected = up;
        ++round;
        phase = Phase::idle;
        patch_deadline.reset();
        retry_at.reset();
        get_to_send = false;
        if (!up) {
            get_deadline.reset();
            std::lock_guard lock(get_mu);
            get_rid.clear();
            return;
        }
        dirty = true;
        send_get();
        pump();
    }

    void send_get() {
        const std::string rid = "g" + std::to_string(next_rid++);
        {
            std::lock_guard lock(get_mu);
            get_rid = rid;
            patches_during_get.clear();
            patches_overflow = false;
        }
        const auto r = round;
        const bool sent = port.publish(port.topic_base + "$iothub/twin/GET/?$rid=" + rid, std::string(),
                                       [self = shared_from_this(), r, rid](bool acked) {
                                           if (!acked) self->post([impl = self.get(), r, rid] { impl->on_get_lost(r, rid); });
                                       },
                                       false);
        if (!sent) {
            {
                std::lock_guard lock(get_mu);
                get_rid.clear();
            }
            get_to_send = true;
            retry_at = Clock::now() + opts.retry_after;
            return;
        }
        get_deadline = Clock::now() + opts.get_timeout;
        get_deadline_rid = rid;
    }

    void on_get_lost(std::uint64_t r, const std::string& rid) {
        if (r != round) return;
        {
            std::lock_guard lock(get_mu);
            if (get_rid != rid) return;
            get_rid.clear();
        }
        get_deadline.reset();
        get_counters["failed"]->inc();
    }

    void on_deadlines(Clock::time_point now) {
        if (patch_deadline && now >= *patch_deadline) {
            patch_deadline.reset();
            if (phase == Phase::answering) {
                patch_counters["timeout"]->inc();
                spdlog::warn("gateway twin: no answer from the hub to reported patch {} within {} s; sending it again",
                             patch_rid, std::chrono::duration_cast<std::chrono::seconds>(opts.patch_timeout).count());
                ++round;
                phase = Phase::idle;
                dirty = true;
                pump();
            }
        }
        if (get_deadline && now >= *get_deadline) {
            get_deadline.reset();
            bool unanswered = false;
            {
                std::lock_guard lock(get_mu);
                if (!get_rid.empty() && get_rid == get_deadline_rid) {
                    unanswered = true;
                    get_rid.clear();
                }
            }
            if (unanswered) {
                get_counters["timeout"]->inc();
                const auto secs = std::chrono::duration_cast<std::chrono::seconds>(opts.get_timeout).count();
                if (!get_timeout_logged)
                    spdlog::warn("gateway twin: no answer to the GET of the gateway's twin within {} s (a broker "
                                 "without a twin service answers none); carrying on with the desired properties "
                                 "stored here. Later timeouts are only counted "
                                 "(hubgate_twin_requests_total{{op=\"upstream_get\",result=\"timeout\"}})",
                                 secs);
                else
                    spdlog::debug("gateway twin: no answer to the GET within {} s", secs);
                get_timeout_logged = true;
            }
        }
        if (retry_at && now >= *retry_at) {
            retry_at.reset();
            if (get_to_send && connected) {
                get_to_send = false;
                send_get();
            }
            pump();
        }
        if (gauge_at && now >= *gauge_at) {
            gauge_at.reset();
            if (!connected) refresh_gauge();
        }
    }

    // Paho's thread.
    void on_response(int status, const std::string& rid, const std::string& body) {
        std::vector<std::pair<std::int64_t, std::string>> later;
        bool overflow = false;
        {
            std::lock_guard lock(get_mu);
            if (get_rid.empty() || rid != get_rid) {
                post([this, rid, status, body] { on_answer(rid, status, body); });
                return;
            }
            get_rid.clear();
            later.swap(patches_during_get);
            overflow = patches_overflow;
        }
        if (status != 200) {
            get_counters["error"]->inc();
            spdlog::warn("gateway twin: the hub answered {} to the GET of the gateway's twin: {}", status,
                         body.substr(0, 300));
            return;
        }
        auto hub = read_gateway_twin(body);
        if (!hub) {
            get_counters["error"]->inc();
            spdlog::warn("gateway twin: the answer to the GET is not usable ({}); local desired properties unchanged",
                         hub.error());
            return;
        }
        if (overflow && hub->version) {
            // Too many patches meanwhile to put back over an older answer: the next connect's GET.
            get_counters["error"]->inc();
            spdlog::warn("gateway twin: too many desired patches while the GET was answered; its answer is not applied");
            return;
        }
        std::promise<std::optional<std::vector<std::pair<std::string, std::string>>>> read;
        store.twin_desired_all([&read](auto rows) { read.set_value(std::move(rows)); });
        auto local = read.get_future().get();
        if (!local) {
            get_counters["error"]->inc();
            spdlog::error("gateway twin: cannot read desired properties from the store; the GET's answer is not applied");
            return;
        }
        const auto changes = desired_changes(*hub, *local);
        const std::size_t changed = twins.apply_desired_changes(changes);
        desired_from_get->inc(changed);
        // A patch newer than the answer arrived while it was on its way: it goes over it again
        // (merge patches apply the same twice).
        std::size_t again = 0;
        for (const auto& [version, patch] : later) {
            if (!hub->version || version <= *hub->version) continue;
            twins.apply_gateway_desired(patch);
            ++again;
        }
        const std::size_t rebased = rebase_reported(body);
        get_counters["ok"]->inc();
        spdlog::info("gateway twin: GET answered (desired $version {}): {} devices in desired.devices, {} local devices "
                     "changed{}{}",
                     hub->version ? std::to_string(*hub->version) : std::string("none"), hub->devices.size(), changed,
                     again ? ", " + std::to_string(again) + " newer patches applied again" : std::string(),
                     rebased ? ", " + std::to_string(rebased) +
                                   " devices' reported properties at the hub are not what the gateway sent: sent again"
                             : std::string());
    }

    // Paho's thread: what the answer's `reported.devices` holds becomes each device's acknowledged
    // document where it differs (the hub's twin was reset or edited, or it is another hub), so the
    // next patch is the difference from what the hub really has. A patch in flight meanwhile is not
    // recorded over it (ReportedSent::base). Returns how many devices.
    std::size_t rebase_reported(const std::string& body) {
        const auto held = read_gateway_reported(body);
        if (!held) return 0;
        std::promise<std::optional<std::vector<std::pair<std::string, std::string>>>> read;
        store.twin_reported_acked_all([&read](auto rows) { read.set_value(std::move(rows)); });
        const auto acked = read.get_future().get();
        if (!acked) return 0;
        auto rebase = reported_rebase(*held, *acked);
        if (rebase.empty()) return 0;
        const std::size_t n = rebase.size();
        std::promise<bool> written;
        store.twin_reported_rebase(std::move(rebase), [&written](bool ok) { written.set_value(ok); });
        if (!written.get_future().get()) return 0;
        post([this] {
            dirty = true;
            pump();
        });
        return n;
    }

    // Paho's thread.
    void on_desired_patch(const std::string& body) {
        if (const auto v = patch_version(body)) {
            std::lock_guard lock(get_mu);
            if (!get_rid.empty()) {
                if (patches_during_get.size() < kMaxPatchesDuringGet) patches_during_get.emplace_back(*v, body);
                else patches_overflow = true;
            }
        }
        desired_from_patch->inc(twins.apply_gateway_desired(body));
    }
};

GatewayTwin::GatewayTwin(TwinService& twins, store::Store& store, UpstreamTwinPort port, GatewayTwinOptions options,
                         metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(twins, store, std::move(port), options, registry)) {}

GatewayTwin::~GatewayTwin() { stop(); }

void GatewayTwin::start() {
    std::lock_guard lock(impl_->mu);
    if (impl_->worker.joinable()) return;
    impl_->stopping = false;
    impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
    // Reported changes from before a restart count as pending until the first connect sends them.
    impl_->events.push_back([impl = impl_.get()] { impl->refresh_gauge(); });
    impl_->cv.notify_one();
}

void GatewayTwin::stop() {
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->worker.joinable()) return;
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->worker.join();
}

void GatewayTwin::reported_changed() {
    impl_->post([impl = impl_.get()] {
        impl->dirty = true;
        impl->pump();
    });
}

void GatewayTwin::connection(bool up, std::uint64_t) {
    impl_->post([impl = impl_.get(), up] { impl->on_connection(up); });
}

void GatewayTwin::desired_patch(const std::string& body) { impl_->on_desired_patch(body); }

void GatewayTwin::response(int status, const std::string& rid, const std::string& body) {
    impl_->on_response(status, rid, body);
}

}  // namespace hubgate::twins
