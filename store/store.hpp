// The durable store (SQLite, WAL, group commit). Adapters append hub messages to the D2C outbox and
// acknowledge devices from the durable callback; the batcher reads oldest first through an
// OutboxReader and removes the seq ranges the hub acknowledged; the C2D relay keeps per-device inbox
// queues and the known devices. See docs/store.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/model/hub_message.hpp"
#include "gateway/model/result.hpp"
#include "store/inbox.hpp"
#include "store/twins.hpp"

namespace hubgate::store {

namespace detail {
class InboxWork;
}

struct SeqRange {
    std::int64_t first;
    std::int64_t last;  // inclusive
};

struct StoredMessage {
    std::int64_t seq = 0;
    HubMessage message;
    // Bytes the row holds for this message: body + encoded properties + device id + module id.
    // Never less than hub_size(message), so a budget in stored bytes is a safe bound on hub size.
    std::size_t stored_bytes = 0;
};

enum class AppendOutcome { durable, rejected_full, disk_full, failed };

struct AppendResult {
    std::size_t durable = 0;  // the first `durable` messages of the request are durable
    AppendOutcome outcome = AppendOutcome::durable;  // about the rest of the request, if any
    std::string reason;       // written for the device/operator, e.g. "store full: 10/10 messages ..."
    // The messages after the first `durable`, handed back in order so the caller can retry them
    // (backpressure) without keeping copies of everything it appends.
    std::vector<HubMessage> unstored;
};

using AppendCallback = std::function<void(AppendResult&)>;  // runs on the writer thread

struct Stats {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;  // sum of stored_bytes
    std::int64_t oldest_enqueued_ms = 0;  // 0 if empty
    std::int64_t last_seq = 0;  // highest seq ever assigned (kept across reopen, even when empty)
};

struct Options {
    config::Store limits;
    std::chrono::milliseconds sweep_interval{30000};  // TTL sweep period on the writer thread
    std::function<std::int64_t()> now_ms;              // default: system clock (Unix epoch ms)
    // Incremental vacuum starts when the freelist exceeds this many pages, and frees at most
    // vacuum_step_pages per step so appends never wait long behind it.
    std::uint32_t vacuum_threshold_pages = 1024;
    std::uint32_t vacuum_step_pages = 256;
    // WAL file size kept after checkpoints (PRAGMA journal_size_limit). About one auto-checkpoint
    // (1000 pages): a larger WAL only appears for a large group and is cut back after it.
    std::int64_t journal_size_limit = 4 * 1024 * 1024;
    // 0 = SQLite's default. Caps the database at this many pages, which makes SQLite answer
    // SQLITE_FULL exactly as a full disk would: tests use it to exercise the disk-full path.
    std::uint32_t max_page_count = 0;
    // With limits.commit_window_ms > 0: a group commits early once its appends hold this many
    // message bytes (at such rates grouping needs no wait), and acknowledged deletes with no append
    // to ride along commit after remove_delay (a delete is never urgent: a lost one means the hub
    // gets the message again, which at-least-once allows).
    std::size_t group_commit_bytes = 12 * 1024;
    // The outbox is a ring of tables (docs/store.md): appends move on to the next table once the
    // active one holds the larger of this and the bytes stored, so a table is emptied in one go
    // soon after the hub acknowledged its last row.
    std::uint64_t segment_min_bytes = 256 * 1024;
    std::chrono::milliseconds remove_delay{1000};
    // The writer gives memory back (SQLite cache, malloc_trim) once no write has committed for
    // this long after a spell of work.
    std::chrono::milliseconds release_memory_after{2000};
    // The writer wakes at least this often when idle, so writer_heartbeat() stays fresh (the
    // systemd watchdog reads it). An idle wake does no I/O.
    std::chrono::milliseconds heartbeat_interval{5000};
};

class OutboxReader;

class Store {
public:
    static Result<std::unique_ptr<Store>> open(Options options, metrics::Registry& registry);
    ~Store();  // = close()
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Any thread. Sets enqueued_ms where it is 0. `done` runs on the writer thread once the
    // commit group holding these messages has committed (or failed).
    void append(std::vector<HubMessage> messages, AppendCallback done);
    // Any thread. Deletes the acknowledged ranges in the next commit group; `done` runs after it.
    void remove(std::vector<SeqRange> acked, std::function<void()> done = {});
    // Called on the writer thread after each commit that added rows (the batcher's wake-up).
    void set_commit_listener(std::function<void(std::int64_t last_seq)> listener);
    Stats stats() const noexcept;  // any thread, O(1)
    Result<std::unique_ptr<OutboxReader>> open_reader();
    // Finishes queued work and the commit in flight, stops the writer thread. Idempotent; appends
    // after close are answered at once with AppendOutcome::failed.
    void close();

    // Blocks until everything queued before the call has been committed and its callbacks ran.
    void flush();
    // Runs the TTL sweep, the incremental vacuum to completion and a truncating WAL checkpoint now,
    // and waits for them (the writer does the same on its own: sweep every sweep_interval, vacuum
    // in bounded steps, passive checkpoints).
    void maintain();

    const std::string& path() const noexcept;
    // Any thread: when the writer thread last went round its loop (after each commit group and
    // each idle wake). Stale by more than heartbeat_interval plus the longest commit = wedged.
    std::chrono::steady_clock::time_point writer_heartbeat() const noexcept;

    // ---- C2D inbox and known devices (inbox.cpp) ---------------------------------------------
    // Any thread. Each request joins the writer's queue and commit group like append(); `done`
    // runs on the writer thread after the transaction holding the change committed (durable), or
    // at once on the calling thread after close() (put: failed, next: nullopt, lists: empty).

    // Queues `m` unless (device_id, message_id) is already in the inbox (duplicate: the hub resent
    // it; seq = the queued one's) or the device already has `queue_depth` messages (queue_full,
    // seq 0). Sets seq and enqueued_ms (if 0) in what it stores. done(result, seq).
    void inbox_put(C2dMessage m, std::uint32_t queue_depth, std::function<void(InboxPut, std::int64_t seq)> done);
    // The oldest message for the device with seq > after_seq (0 = from the start), or nullopt.
    // Expired messages are returned too: inbox_take_expired is what removes them.
    void inbox_next(std::string device_id, std::int64_t after_seq,
                    std::function<void(std::optional<C2dMessage>)> done);
    // Sets delivery_count (abandon / a delivery attempt that ended without completion).
    void inbox_set_delivery_count(std::int64_t seq, std::uint32_t count, std::function<void()> done = {});
    // Deletes the message (completed, rejected, dead-lettered, expired). done(existed).
    void inbox_remove(std::int64_t seq, std::function<void(bool existed)> done = {});
    // Deletes every message with expires_ms <= now_ms and hands them over, oldest seq first.
    void inbox_take_expired(std::int64_t now_ms, std::function<void(std::vector<C2dMessage>)> done);
    // Distinct device ids with queued messages, sorted (after a restart, to know whom to deliver to).
    void inbox_devices(std::function<void(std::vector<std::string>)> done);
    // Known devices: ids first seen on an auth = "none" listener, persisted so C2D can reach them
    // after a restart. Idempotent; done(newly_added).
    // Read back through DeviceRegistry::seen() (its own connection).
    void device_seen(std::string id, std::function<void(bool newly_added)> done = {});
    // Remembers (replaces) a device's route, in the next commit group; read back by
    // DeviceRegistry::routes().
    void device_route(StoredRoute route);
    std::uint64_t inbox_count() const noexcept;  // messages in the inbox; O(1), any thread

    // ---- device twins (twins.cpp, docs/twins.md) ----------------------------------------------
    // Same queue and commit group as the inbox. twin_get: the device's twin (empty documents at
    // version 1 if it has none), nullopt if the store failed. twin_update: `change` maps the side's
    // document to its new text on the writer thread; `done` runs after the COMMIT that holds it.
    void twin_get(std::string device_id, std::function<void(std::optional<StoredTwin>)> done);
    void twin_update(std::string device_id, TwinSide side, TwinChange change, std::function<void(TwinUpdate)> done);
    // The gateway twin's uplink: devices with reported changes the hub has not acknowledged, and
    // the size of what it has (nullopt if the store failed); then, once the hub acknowledged a
    // patch, each device's acknowledged document and version (never moves a device's back).
    void twin_reported_backlog(std::function<void(std::optional<ReportedBacklog>)> done);
    void twin_reported_sent(std::vector<ReportedSent> sent, std::function<void(bool committed)> done);
    // The GET on connect says what the hub really holds: every device's acknowledged document
    // (id, reported_sent), then, for those the hub holds otherwise, that document at version 0 (so
    // their next patch is the difference from it).
    void twin_reported_acked_all(std::function<void(std::optional<std::vector<std::pair<std::string, std::string>>>)> done);
    void twin_reported_rebase(std::vector<std::pair<std::string, std::string>> held, std::function<void(bool committed)> done);
    // Every device whose desired document is not empty: (id, document), by id; nullopt if the
    // store failed. (The GET of the gateway's twin on connect compares them with the hub's.)
    void twin_desired_all(std::function<void(std::optional<std::vector<std::pair<std::string, std::string>>>)> done);

    struct Impl;

private:
    explicit Store(std::unique_ptr<Impl> impl);
    // Queues inbox work for the writer; after close() it is finished (failed) at once instead.
    void enqueue_inbox(std::unique_ptr<detail::InboxWork> work);
    std::unique_ptr<Impl> impl_;
};

// One connection of its own, used by one thread (the batcher's).
class OutboxReader {
public:
    ~OutboxReader();
    OutboxReader(const OutboxReader&) = delete;
    OutboxReader& operator=(const OutboxReader&) = delete;

    // Oldest first, seq > after_seq; stops before the running sum of stored_bytes would exceed
    // byte_budget but always returns at least one message if any exists; at most max_count.
    // `out` is overwritten (its elements' storage is reused). A corrupt row is an error.
    Status read(std::int64_t after_seq, std::size_t byte_budget, std::size_t max_count,
                std::vector<StoredMessage>& out);

    struct Impl;

private:
    friend class Store;
    explicit OutboxReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The schema version this build creates and understands (PRAGMA user_version).
int schema_version() noexcept;

const char* to_string(AppendOutcome outcome) noexcept;

}  // namespace hubgate::store
