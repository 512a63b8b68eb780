#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/c2d/c2d_relay.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <unordered_map>

#include "gateway/c2d/feedback.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/model/clock.hpp"
#include "gateway/model/message_id.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/pipeline/c2d_delivery.hpp"
#include "gateway/upstream/upstream_client.hpp"
#include "store/inbox.hpp"
#include "store/store.hpp"

namespace hubgate::c2d {

namespace asio = boost::asio;

namespace {

bool wants_positive(store::AckMode a) { return a == store::AckMode::positive || a == store::AckMode::full; }
bool wants_negative(store::AckMode a) { return a == store::AckMode::negative || a == store::AckMode::full; }

store::AckMode parse_ack(const std::optional<std::string>& v) {
    if (!v) return store::AckMode::none;
    if (*v == "positive") return store::AckMode::positive;
    if (*v == "negative") return store::AckMode::negative;
    if (*v == "full") return store::AckMode::full;
    return store::AckMode::none;
}

}  // namespace

struct C2dRelay::Impl : std::enable_shared_from_this<C2dRelay::Impl> {
    Impl(asio::io_context& io_, store::Store& s, upstream::UpstreamClient& u, C2dDeliverer& d, DeviceDirectory& dev,
         config::C2d o, metrics::Registry& r)
        : io(io_),
          store(s),
          upstream(u),
          deliverer(d),
          devices(dev),
          options(o),
          registry(r),
          expiry_timer(io_),
          feedback_timer(io_),
          queued(counter("queued")),
          delivered(counter("delivered")),
          completed(counter("completed")),
          expired(counter("expired")),
          dead_lettered(counter("dead_lettered")),
          redelivered(counter("redelivered")),
          feedback_records(r.counter("hubgate_c2d_feedback_records_total", "feedback records produced")) {}

    metrics::Counter& counter(const char* event) {
        return registry.counter("hubgate_c2d_messages_total", "C2D messages by event", {{"event", event}});
    }
    void count_rejected(const char* reason) {
        counter("rejected").inc();
        registry.counter("hubgate_c2d_rejected_total", "C2D messages rejected, by reason", {{"reason", reason}}).inc();
    }

    struct DeviceState {
        bool reachable = false;
        bool busy = false;  // a lookup or a delivery is in flight (one per device)
    };

    // Paho's thread: parse, persist, and only then return (which sends the hub its PUBACK).
    void on_upstream_message(const std::string& topic, const std::string& payload);
    // io thread:
    void pump(const std::string& device);
    void deliver(store::C2dMessage m);
    void on_outcome(store::C2dMessage m, DeliveryOutcome outcome);
    void add_feedback(const store::C2dMessage& m, FeedbackStatus status, std::string description);
    void add_feedback(FeedbackRecord r);
    void flush_feedback();
    void sweep_expired();
    void arm_expiry();

    asio::io_context& io;
    store::Store& store;
    upstream::UpstreamClient& upstream;
    C2dDeliverer& deliverer;
    DeviceDirectory& devices;
    config::C2d options;
    metrics::Registry& registry;
    asio::steady_timer expiry_timer;
    asio::steady_timer feedback_timer;
    bool feedback_timer_armed = false;
    std::atomic<bool> stopped{false};
    std::unordered_map<std::string, DeviceState> state;  // io thread only
    std::vector<FeedbackRecord> pending_feedback;        // io thread only
    std::function<std::optional<std::string>(const HubMessage&)> precheck;
    MessageIdGenerator ids;                              // io thread only
    metrics::Counter& queued;
    metrics::Counter& delivered;
    metrics::Counter& completed;
    metrics::Counter& expired;
    metrics::Counter& dead_lettered;
    metrics::Counter& redelivered;
    metrics::Counter& feedback_records;
};

void C2dRelay::Impl::on_upstream_message(const std::string& topic, const std::string& payload) {
    HubMessage m;
    m.body = payload;
    const std::string marker = "/messages/devicebound/";
    const auto at = topic.find(marker);
    const std::string bag = at == std::string::npos ? std::string() : topic.substr(at + marker.size());
    store::AckMode ack = store::AckMode::none;
    auto reject = [&](const char* reason, std::string why) {
        spdlog::warn("c2d: message {} rejected: {}", m.system.message_id.empty() ? "(no id)" : m.system.message_id, why);
        FeedbackRecord r{m.system.message_id, m.device_id, FeedbackStatus::rejected, std::move(why), unix_ms()};
        auto self = shared_from_this();
        const bool negative = wants_negative(ack);
        asio::post(io, [self, r = std::move(r), reason, negative]() mutable {
            self->count_rejected(reason);
            if (negative) self->add_feedback(std::move(r));
        });
    };
    if (auto err = apply_property_bag(bag, m)) {
        reject("invalid", "malformed property bag: " + err->reason);
        return;
    }
    if (auto a = m.properties.find("iothub-ack")) ack = parse_ack(a->value);
    auto target = m.properties.erase("device-id");  // routing only: the device does not see it
    if (!target || !*target || (*target)->empty()) {
        reject("no_device_id", "no device-id application property names the local device");
        return;
    }
    m.device_id = **target;
    if (!devices.known(m.device_id)) {
        reject("unknown_device", "device '" + m.device_id + "' is not known to gateway " + upstream.gateway_device_id());
        return;
    }
    store::C2dMessage c;
    c.ack = ack;
    const std::int64_t now = unix_ms();
    c.expires_ms = now + static_cast<std::int64_t>(options.default_ttl_seconds) * 1000;
    if (!m.system.absolute_expiry_time.empty()) {
        const auto exp = parse_iso8601_utc_ms(m.system.absolute_expiry_time);
        if (exp > 0) c.expires_ms = exp;
    }
    m.enqueued_ms = now;
    c.message = std::move(m);
    const std::string device = c.message.device_id;
    const std::string message_id = c.message.system.message_id;
    // The PUBACK goes out when this returns, so wait for the durable commit. If the store cannot
    // take it (disk full), keep the hub waiting and retry: MQTT 3.1.1 has no negative ack, and a
    // PUBACK for a message we did not store would lose it.
    store::InboxPut outcome = store::InboxPut::failed;
    for (int attempt = 0;; ++attempt) {
        std::promise<store::InboxPut> persisted;
        auto result = persisted.get_future();
        store.inbox_put(c, options.queue_depth,
                        [&persisted](store::InboxPut r, std::int64_t) { persisted.set_value(r); });
        outcome = result.get();
        if (outcome != store::InboxPut::failed || stopped) break;
        if (attempt == 0) spdlog::error("c2d: message {} for {} could not be stored; retrying", message_id, device);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    switch (outcome) {
        case store::InboxPut::queued:
            asio::post(io, [self = shared_from_this(), device] {
                self->queued.inc();
                self->pump(device);
            });
            break;
        case store::InboxPut::duplicate:
            asio::post(io, [self = shared_from_this()] { self->counter("duplicate").inc(); });
            spdlog::info("c2d: message {} for {} is already queued (the hub sent it again)", message_id, device);
            break;
        case store::InboxPut::queue_full:
            m = std::move(c.message);  // reject() reports m's id and device; it was moved into c above
            reject("queue_full", "the queue of device '" + device + "' is full (" + std::to_string(options.queue_depth) +
                                     " messages)");
            break;
        case store::InboxPut::failed:
            spdlog::error("c2d: message {} for {} not stored: the gateway is stopping", message_id, device);
            break;
    }
}

void C2dRelay::Impl::pump(const std::string& device) {
    auto& st = state[device];
    if (stopped || !st.reachable || st.busy) return;
    st.busy = true;
    store.inbox_next(device, 0, [self = shared_from_this(), device](std::optional<store::C2dMessage> m) {
        asio::post(self->io, [self, device, m = std::move(m)]() mutable {
            auto& s = self->state[device];
            if (!m) {
                s.busy = false;
                return;
            }
            if (m->expires_ms <= unix_ms()) {
                // Never delivered once expired: drop it (Expired feedback) and look at the next one.
                auto gone = std::move(*m);
                self->store.inbox_remove(gone.seq);
                self->expired.inc();
                self->add_feedback(gone, FeedbackStatus::expired, "expired before it could be delivered");
                s.busy = false;
                self->pump(device);
                return;
            }
            if (!s.reachable) {
                s.busy = false;
                return;
            }
            self->deliver(std::move(*m));
        });
    });
}

void C2dRelay::Impl::deliver(store::C2dMessage m) {
    // What the device sees: $.mid, $.cid, $.to rewritten to its own devicebound path, and the
    // application properties minus the routing ones (device-id was removed on arrival).
    HubMessage out;
    out.body = m.message.body;
    out.system.message_id = m.message.system.message_id;
    out.system.correlation_id = m.message.system.correlation_id;
    out.system.to = "/devices/" + m.message.device_id + "/messages/devicebound";
    out.properties = m.message.properties;
    out.device_id = m.message.device_id;
    const std::string device = m.message.device_id;
    if (precheck) {
        if (auto why = precheck(out)) {
            spdlog::warn("c2d: message {} for {} rejected: {}", m.message.system.message_id, device, *why);
            count_rejected("c2d_topic");
            store.inbox_remove(m.seq);
            add_feedback(m, FeedbackStatus::rejected, std::move(*why));
            state[device].busy = false;
            pump(device);
            return;
        }
    }
    delivered.inc();
    deliverer.deliver(device, std::move(out), [self = shared_from_this(), m = std::move(m)](DeliveryOutcome o) mutable {
        // The MQTT adapter answers on its own thread, which is this io_context.
        self->on_outcome(std::move(m), o);
    });
}

void C2dRelay::Impl::on_outcome(store::C2dMessage m, DeliveryOutcome outcome) {
    const std::string device = m.message.device_id;
    auto& st = state[device];
    st.busy = false;
    switch (outcome) {
        case DeliveryOutcome::completed:
            completed.inc();
            store.inbox_remove(m.seq);
            if (wants_positive(m.ack)) add_feedback(m, FeedbackStatus::success, "delivered and completed");
            pump(device);
            return;
        case DeliveryOutcome::unreachable:
            st.reachable = false;
            return;
        case DeliveryOutcome::rejected:
            counter("rejected").inc();
            store.inbox_remove(m.seq);
            add_feedback(m, FeedbackStatus::rejected, "rejected by the device");
            pump(device);
            return;
        case DeliveryOutcome::not_delivered: {
            const std::uint32_t count = m.delivery_count + 1;
            if (count >= options.max_delivery_count) {
                dead_lettered.inc();
                store.inbox_remove(m.seq);
                spdlog::warn("c2d: message {} for {} dead-lettered after {} delivery attempts", m.message.system.message_id,
                             device, count);
                add_feedback(m, FeedbackStatus::delivery_count_exceeded,
                             "not completed after " + std::to_string(count) + " delivery attempts");
            } else {
                redelivered.inc();
                store.inbox_set_delivery_count(m.seq, count);
            }
            pump(device);
            return;
        }
    }
}

void C2dRelay::Impl::add_feedback(const store::C2dMessage& m, FeedbackStatus status, std::string description) {
    const bool wanted = status == FeedbackStatus::success ? wants_positive(m.ack) : wants_negative(m.ack);
    if (!wanted) return;
    add_feedback(FeedbackRecord{m.message.system.message_id, m.message.device_id, status, std::move(description), unix_ms()});
}

void C2dRelay::Impl::add_feedback(FeedbackRecord r) {
    feedback_records.inc();
    pending_feedback.push_back(std::move(r));
    if (pending_feedback.size() >= options.feedback_max_records) {
        flush_feedback();
        return;
    }
    if (!feedback_timer_armed) {
        feedback_timer_armed = true;
        feedback_timer.expires_after(std::chrono::milliseconds(options.feedback_max_delay_ms));
        feedback_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->feedback_timer_armed = false;
            if (!ec) self->flush_feedback();
        });
    }
}

void C2dRelay::Impl::flush_feedback() {
    if (pending_feedback.empty()) return;
    auto msg = feedback_message(pending_feedback, upstream.gateway_device_id(), ids.next(), unix_ms());
    spdlog::debug("c2d: {} feedback records queued upstream", pending_feedback.size());
    pending_feedback.clear();
    if (feedback_timer_armed) feedback_timer.cancel();
    std::vector<HubMessage> batch;
    batch.push_back(std::move(msg));
    store.append(std::move(batch), [](store::AppendResult& r) {
        if (r.outcome != store::AppendOutcome::durable)
            spdlog::error("c2d: feedback could not be stored: {}", r.reason);
    });
}

void C2dRelay::Impl::sweep_expired() {
    store.inbox_take_expired(unix_ms(), [self = shared_from_this()](std::vector<store::C2dMessage> gone) {
        asio::post(self->io, [self, gone = std::move(gone)] {
            for (const auto& m : gone) {
                self->expired.inc();
                self->add_feedback(m, FeedbackStatus::expired, "expired before it could be delivered");
            }
            if (!gone.empty()) spdlog::info("c2d: {} messages expired undelivered", gone.size());
            self->arm_expiry();
        });
    });
}

void C2dRelay::Impl::arm_expiry() {
    if (stopped) return;
    expiry_timer.expires_after(std::chrono::seconds(1));
    expiry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && !self->stopped) self->sweep_expired();
    });
}

C2dRelay::C2dRelay(asio::io_context& io, store::Store& store, upstream::UpstreamClient& upstream, C2dDeliverer& deliverer,
                   DeviceDirectory& devices, config::C2d options, metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(io, store, upstream, deliverer, devices, options, registry)) {}

C2dRelay::~C2dRelay() { stop(); }

void C2dRelay::set_precheck(std::function<std::optional<std::string>(const HubMessage&)> check) {
    impl_->precheck = std::move(check);
}

void C2dRelay::start() {
    auto impl = impl_;
    impl->upstream.set_message_listener(
        [impl](const std::string& topic, const std::string& payload) { impl->on_upstream_message(topic, payload); });
    impl->deliverer.set_reachability_listener([impl](const std::string& device, bool reachable) {
        // Called on the adapters' thread (this io_context).
        impl->state[device].reachable = reachable;
        if (reachable) impl->pump(device);
    });
    impl->arm_expiry();
}

void C2dRelay::stop() {
    if (!impl_ || impl_->stopped) return;
    impl_->stopped = true;
    impl_->expiry_timer.cancel();
    impl_->flush_feedback();
}

}  // namespace hubgate::c2d
