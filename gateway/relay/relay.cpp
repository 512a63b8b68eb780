#include "gateway/relay/relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/model/clock.hpp"
#include "gateway/relay/batch_format.hpp"
#include "gateway/upstream/upstream_client.hpp"
#include "store/store.hpp"

namespace hubgate::relay {

struct Relay::Impl {
    Impl(store::Store& s, upstream::UpstreamClient& c, RelayOptions o, metrics::Registry& r)
        : store(s),
          client(c),
          options(o),
          builder(o.max_batch_bytes),
          batches(r.counter("hubgate_upstream_batches_total", "batched publishes acknowledged by the hub")),
          singles(r.counter("hubgate_upstream_unbatched_total", "single-message publishes acknowledged by the hub")),
          relayed(r.counter("hubgate_upstream_messages_relayed_total", "messages the hub acknowledged (then deleted)")),
          relayed_bytes(r.counter("hubgate_upstream_relayed_bytes_total", "payload bytes of acknowledged publishes")),
          oversize(r.counter("hubgate_upstream_oversize_alone_total",
                             "messages too large for any batch once wrapped, sent alone")),
          resent(r.counter("hubgate_upstream_resent_messages_total",
                           "messages sent again because their publish was not acknowledged (possible duplicates)")),
          inflight_gauge(r.gauge("hubgate_upstream_inflight", "publishes waiting for the hub's PUBACK")),
          fill_gauge(r.gauge("hubgate_upstream_last_batch_fill", "size of the last batch / max_batch_bytes")) {}

    // ---- shared with other threads (under mu) ----
    struct Completion {
        std::uint64_t id;
        bool ok;
    };
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool connected = false;
    std::uint64_t epoch = 0;
    bool state_changed = false;
    bool data_hint = true;  // a backlog may exist at start
    std::deque<Completion> completions;

    // ---- owned by the relay thread ----
    struct Inflight {
        std::uint64_t id;
        store::SeqRange range;
        std::size_t messages;
        bool batch;
        std::string topic;    // kept so a failed publish can be sent again on its own
        std::string payload;
        bool acked = false;
        bool retry = false;   // failed on a live connection: publish again
    };
    store::Store& store;
    upstream::UpstreamClient& client;
    RelayOptions options;
    std::unique_ptr<store::OutboxReader> reader;
    std::thread thread;

    std::deque<Inflight> inflight;
    std::uint64_t next_id = 1;
    std::uint64_t my_epoch = 0;
    bool my_connected = false;
    std::int64_t frontier = 0;  // every row <= frontier is acknowledged (or was never ours to send)
    std::int64_t read_after = 0;  // the last row read from the store (rows[] holds what follows it)
    std::vector<store::StoredMessage> rows;  // read but not yet packed: rows[row_pos..]
    std::size_t row_pos = 0;
    bool store_drained = false;  // the last read found nothing after read_after
    BatchBuilder builder;
    std::int64_t batch_first = 0, batch_last = 0, batch_oldest_ms = 0;
    std::string topic;
    std::chrono::steady_clock::time_point wake_at = std::chrono::steady_clock::time_point::max();
    bool refusal_logged = false;  // one line per episode, not per retry
    bool failure_logged = false;

    metrics::Counter& batches;
    metrics::Counter& singles;
    metrics::Counter& relayed;
    metrics::Counter& relayed_bytes;
    metrics::Counter& oversize;
    metrics::Counter& resent;
    metrics::Gauge& inflight_gauge;
    metrics::Gauge& fill_gauge;

    void run();
    void restart_from_frontier(const char* why);
    void handle(const Completion& c);
    void fill_window();
    bool next_row(store::StoredMessage*& out);
    bool send(std::string payload, store::SeqRange range, std::size_t messages, bool batch);
    bool publish(Inflight& f);
    bool retry_failed();
    bool send_batch();
};

void Relay::Impl::run() {
    for (;;) {
        std::deque<Completion> done;
        {
            std::unique_lock lock(mu);
            auto ready = [&] {
                return stopping || state_changed || !completions.empty() ||
                       (connected && data_hint && inflight.size() < (options.batch ? options.window : options.unbatched_window));
            };
            if (wake_at == std::chrono::steady_clock::time_point::max()) cv.wait(lock, ready);
            else cv.wait_until(lock, wake_at, ready);
            if (stopping) return;
            if (state_changed) {
                state_changed = false;
                if (epoch != my_epoch || connected != my_connected) {
                    const bool reconnected = epoch != my_epoch;
                    my_epoch = epoch;
                    my_connected = connected;
                    lock.unlock();
                    // A new connection (or a lost one): whatever was in flight is not acknowledged
                    // and is sent again from the last point where everything before was acked.
                    if (!inflight.empty() || reconnected) restart_from_frontier(connected ? "reconnected" : "disconnected");
                    lock.lock();
                }
            }
            done.swap(completions);
            if (data_hint) store_drained = false;  // new rows may be there: read again
            data_hint = false;  // fill_window reads until the store has nothing more
        }
        for (const auto& c : done) handle(c);
        wake_at = std::chrono::steady_clock::time_point::max();
        if (my_connected) fill_window();
    }
}

void Relay::Impl::restart_from_frontier(const char* why) {
    std::size_t again = 0;
    for (const auto& f : inflight)
        if (!f.acked) again += f.messages;
    if (again > 0) {
        resent.inc(again);
        spdlog::info("relay: {}; {} unacknowledged messages will be sent again", why, again);
    }
    inflight.clear();
    inflight_gauge.set(0);
    read_after = frontier;
    rows.clear();
    row_pos = 0;
    builder.reset();
    store_drained = false;
    std::lock_guard lock(mu);
    data_hint = true;
}

void Relay::Impl::handle(const Completion& c) {
    auto it = std::find_if(inflight.begin(), inflight.end(), [&](const Inflight& f) { return f.id == c.id; });
    if (it == inflight.end()) return;  // from an earlier connection: already scheduled for resend
    if (!c.ok) {
        // While the connection is down the reconnect resends everything from the frontier; on a
        // live connection only this publish goes again, so one failure cannot duplicate a window.
        if (!my_connected) return;
        if (!failure_logged) {
            spdlog::warn("relay: a publish of {} messages was not acknowledged; sending it again", it->messages);
            failure_logged = true;
        }
        resent.inc(it->messages);
        it->retry = true;
        return;
    }
    failure_logged = false;
    it->acked = true;
    store.remove({it->range});  // deleted in the store's next commit group, one transaction
    relayed.inc(it->messages);
    relayed_bytes.inc(it->payload.size());
    (it->batch ? batches : singles).inc();
    while (!inflight.empty() && inflight.front().acked) {
        frontier = inflight.front().range.last;
        inflight.pop_front();
    }
    inflight_gauge.set(static_cast<double>(inflight.size()));
    std::lock_guard lock(mu);
    data_hint = true;  // a slot opened in the window
}

// The next unsent row, reading from the store when the buffered ones are used up.
bool Relay::Impl::next_row(store::StoredMessage*& out) {
    if (row_pos >= rows.size()) {
        if (store_drained) return false;
        // Budget: enough rows for a full batch and some; reads stay short (one read transaction).
        if (auto err = reader->read(read_after, static_cast<std::size_t>(options.max_batch_bytes) * 2, options.read_rows, rows)) {
            spdlog::error("relay: reading the store failed: {}", err->reason);
            rows.clear();
        }
        row_pos = 0;
        if (rows.empty()) {
            store_drained = true;
            return false;
        }
        read_after = rows.back().seq;
    }
    out = &rows[row_pos];
    return true;
}

bool Relay::Impl::publish(Inflight& f) {
    const std::uint64_t id = next_id++;
    const bool accepted = client.publish(f.topic, f.payload, [this, id](bool ok) {
        std::lock_guard lock(mu);
        completions.push_back({id, ok});
        cv.notify_one();
    });
    if (!accepted) {
        // Not connected (the state listener will say so) or the client is saturated: nothing
        // was sent, so nothing is resent; try the same publish again in a moment.
        wake_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        if (!refusal_logged) {
            spdlog::info("relay: the upstream connection refused a publish; retrying");
            refusal_logged = true;
        }
        return false;
    }
    refusal_logged = false;
    f.id = id;
    f.retry = false;
    return true;
}

// Publishes again, in order, what failed on a live connection. False if the client refused.
bool Relay::Impl::retry_failed() {
    for (auto& f : inflight)
        if (f.retry && !publish(f)) return false;
    return true;
}

bool Relay::Impl::send(std::string payload, store::SeqRange range, std::size_t messages, bool batch) {
    Inflight f{0, range, messages, batch, topic, std::move(payload)};
    if (!publish(f)) return false;
    inflight.push_back(std::move(f));
    inflight_gauge.set(static_cast<double>(inflight.size()));
    return true;
}

bool Relay::Impl::send_batch() {
    const std::string& body = builder.body();
    topic = BatchBuilder::topic(client.gateway_device_id());
    if (!send(body, {batch_first, batch_last}, builder.count(), true)) return false;  // batch kept for the retry
    fill_gauge.set(builder.fill());
    builder.reset();
    return true;
}

void Relay::Impl::fill_window() {
    const std::size_t window = options.batch ? options.window : options.unbatched_window;
    store::StoredMessage* row = nullptr;
    if (!retry_failed()) return;
    while (inflight.size() < window) {
        if (!options.batch) {
            if (!next_row(row)) return;
            format_unbatched_topic(topic, client.gateway_device_id(), row->message);
            if (!send(row->message.body, {row->seq, row->seq}, 1, false)) return;  // same row next time
            ++row_pos;
            continue;
        }
        // Batch mode: pack rows until the batch is full or the store has nothing more.
        bool full = false;
        while (!full && next_row(row)) {
            switch (builder.add(row->message)) {
                case BatchBuilder::Add::added:
                    if (builder.count() == 1) {
                        batch_first = row->seq;
                        batch_oldest_ms = row->message.enqueued_ms;
                    }
                    batch_last = row->seq;
                    ++row_pos;
                    break;
                case BatchBuilder::Add::full:
                    full = true;
                    break;
                case BatchBuilder::Add::alone:
                    if (!builder.empty()) {
                        full = true;  // send what we have first; this one goes alone next, in order
                        break;
                    }
                    format_unbatched_topic(topic, client.gateway_device_id(), row->message);
                    if (!send(row->message.body, {row->seq, row->seq}, 1, false)) return;  // same row next time
                    oversize.inc();
                    ++row_pos;
                    if (inflight.size() >= window) return;
                    break;
            }
        }
        if (builder.empty()) return;  // nothing to send
        if (!full) {
            // A small backlog: give the batch until its oldest message is max_batch_delay old.
            const std::int64_t due = batch_oldest_ms + options.max_batch_delay.count();
            const std::int64_t now = unix_ms();
            if (now < due) {
                // Rows already packed stay in the builder; new commits wake us (data_hint).
                store_drained = false;
                wake_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(due - now);
                return;
            }
        }
        if (!send_batch()) return;
        store_drained = false;
    }
}

Relay::Relay(store::Store& store, upstream::UpstreamClient& client, RelayOptions options, metrics::Registry& registry)
    : impl_(std::make_unique<Impl>(store, client, options, registry)) {}

Relay::~Relay() { stop(); }

bool Relay::start() {
    auto reader = impl_->store.open_reader();
    if (!reader) {
        spdlog::error("relay: cannot open a store reader: {}", reader.error());
        return false;
    }
    impl_->reader = std::move(reader.value());
    Impl* impl = impl_.get();
    impl_->store.set_commit_listener([impl](std::int64_t) {
        std::lock_guard lock(impl->mu);
        if (!impl->data_hint) {
            impl->data_hint = true;
            impl->cv.notify_one();
        }
    });
    impl_->client.set_state_listener([impl](bool connected, std::uint64_t epoch) {
        std::lock_guard lock(impl->mu);
        impl->connected = connected;
        impl->epoch = epoch;
        impl->state_changed = true;
        impl->cv.notify_one();
    });
    impl_->thread = std::thread([impl] { impl->run(); });
    return true;
}

void Relay::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
        impl_->cv.notify_one();
    }
    impl_->thread.join();
    impl_->store.set_commit_listener({});
    impl_->client.set_state_listener({});
}

}  // namespace hubgate::relay
