// The writer: one thread owns the writer connection and turns everything queued since the last
// commit (appends, removes, inbox work) into one transaction. Counters live in memory and in the
// meta row.
#include "store/store.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <iterator>
#include <mutex>
#include <thread>

#include "store/inbox_work.hpp"
#include "store/outbox_ring.hpp"
#include "gateway/model/clock.hpp"
#include "store/record_codec.hpp"
#include "store/schema.hpp"
#include "store/sqlite_util.hpp"

namespace hubgate::store {

using detail::StmtPtr;

namespace {

// Read by stats() and the scrape-time gauges from any thread; written by the writer after commits.
// Shared with the gauges so a scrape after the store is gone reads stale numbers, not freed memory.
struct Counts {
    std::atomic<std::uint64_t> messages{0};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::int64_t> oldest_enqueued_ms{0};
    std::atomic<std::int64_t> last_seq{0};
};

struct AppendRequest {
    std::vector<HubMessage> messages;
    AppendCallback done;
};
// Moves the messages a request could not store into its result, for the caller to retry.
void hand_back(AppendRequest& req, AppendResult& r) {
    if (r.durable >= req.messages.size()) return;
    r.unstored.assign(std::make_move_iterator(req.messages.begin() + static_cast<std::ptrdiff_t>(r.durable)),
                      std::make_move_iterator(req.messages.end()));
}

struct RemoveRequest {
    std::vector<SeqRange> ranges;
    std::function<void()> done;
};

using InboxQueue = std::vector<std::unique_ptr<detail::InboxWork>>;

struct WorkQueue {
    std::vector<AppendRequest> appends;
    std::vector<RemoveRequest> removes;
    InboxQueue inbox;  // in arrival order
    std::vector<std::promise<void>> flushes;
    std::vector<std::promise<void>> maintains;

    bool empty() const noexcept {
        return appends.empty() && removes.empty() && inbox.empty() && flushes.empty() && maintains.empty();
    }
    void clear() noexcept {  // keeps the vectors' capacity for the next group
        appends.clear();
        removes.clear();
        inbox.clear();
        flushes.clear();
        maintains.clear();
    }
};

// Which inbox work a transaction runs: a retry after a failed group leaves out what may grow the file.
enum class InboxPart { all, growing, not_growing };

// Finished work is reset to null in the queue; it is in no part.
bool in_part(const std::unique_ptr<detail::InboxWork>& w, InboxPart part) noexcept {
    if (!w) return false;
    switch (part) {
        case InboxPart::all: return true;
        case InboxPart::growing: return w->grows();
        case InboxPart::not_growing: return !w->grows();
    }
    return false;
}

// In-memory state of one transaction; published to Counts only after COMMIT succeeds.
struct TxState {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::int64_t last_seq = 0;
    std::uint64_t inserted = 0;
    std::uint64_t removed = 0;         // acknowledged and deleted
    std::uint64_t dropped_overflow = 0;
    std::uint64_t rejected_full = 0;
    bool deleted_any = false;
};

template <class F>
void run_callback(const char* what, F&& f) {
    // A throwing callback must not take the writer thread (and every later commit) down with it.
    try {
        f();
    } catch (const std::exception& e) {
        spdlog::error("store: {} callback threw: {}", what, e.what());
    } catch (...) {
        spdlog::error("store: {} callback threw", what);
    }
}

}  // namespace

struct Store::Impl {
    Options options;
    std::string path;
    detail::DbPtr db;

    StmtPtr update_meta_stmt;
    detail::OutboxRing ring;  // the outbox's tables (outbox_ring.cpp)

    std::shared_ptr<Counts> counts = std::make_shared<Counts>();
    detail::InboxTables inbox;  // writer-thread side of the C2D inbox (inbox.cpp)

    metrics::Counter* appended_total = nullptr;
    metrics::Counter* removed_total = nullptr;
    metrics::Counter* commits_total = nullptr;
    metrics::Counter* dropped_ttl = nullptr;
    metrics::Counter* dropped_overflow = nullptr;
    metrics::Counter* rejected_full = nullptr;
    metrics::Counter* rejected_disk_full = nullptr;
    metrics::Counter* commit_errors = nullptr;

    std::mutex mu;
    std::condition_variable cv;
    WorkQueue queue;
    // Guarded by mu: when the queued appends / removes started waiting, and the appends' bytes
    // (the commit window, hold_group()).
    std::chrono::steady_clock::time_point first_append, first_remove;
    std::size_t queued_bytes = 0;
    bool stopping = false;
    bool closed = false;  // guarded by mu; appends after close are refused at once
    std::function<void(std::int64_t)> commit_listener;  // guarded by mu (copied per commit)

    std::thread writer;
    std::mutex close_mu;
    // steady_clock ticks of the writer's last loop (writer_heartbeat()).
    std::atomic<std::chrono::steady_clock::rep> heartbeat{std::chrono::steady_clock::now().time_since_epoch().count()};

    // Writer-thread state.
    std::string props_buf;  // reused for every row's encoded properties
    bool disk_full_logged = false;
    bool vacuum_check = true;  // deleted rows since the last freelist check
    std::chrono::steady_clock::time_point next_sweep;
    std::chrono::steady_clock::time_point last_commit;  // when the last write group started
    bool worked_since_release = true;                   // release_memory() has something to do
                                                        // (at first: what start-up left behind)

    // ---- opening -------------------------------------------------------------------------------

    Status open_db() {
        auto d = detail::open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
        if (!d) return Error{d.error()};
        db = std::move(d).value();
        auto before = schema::migrate(db.get(), schema::steps(), path);
        if (!before) return Error{before.error()};
        if (*before != schema_version())
            spdlog::info("store: migrated {} from schema version {} to {}", path, *before, schema_version());

        if (auto e = detail::enable_wal(db.get(), path)) return e;
        // power: the WAL is synced on every commit, so a commit survives a power cut.
        // process: synced only at checkpoints; a commit survives a crash of the process, not of the OS.
        const char* sync = options.limits.durability == config::Durability::power ? "PRAGMA synchronous = FULL"
                                                                                   : "PRAGMA synchronous = NORMAL";
        if (auto e = detail::exec(db.get(), sync)) return Error{"store " + path + ": " + e->reason};
        // The writer touches the outbox's head and tail and the b-tree above them: 1 MiB of cache
        // (SQLite's default is 2 MiB per connection) holds that with room to spare.
        if (auto e = detail::exec(db.get(), "PRAGMA cache_size = -1024"))
            return Error{"store " + path + ": " + e->reason};
        // Debian builds SQLite with SECURE_DELETE, which zeroes every deleted row in place: each
        // delete rewrote the pages of the rows the hub had acknowledged, and freed pages too. FAST
        // zeroes only within pages a transaction writes anyway (no extra I/O).
        if (auto e = detail::exec(db.get(), "PRAGMA secure_delete = FAST"))
            return Error{"store " + path + ": " + e->reason};
        const std::string jsl = "PRAGMA journal_size_limit = " + std::to_string(options.journal_size_limit);
        if (auto e = detail::exec(db.get(), jsl.c_str())) return Error{"store " + path + ": " + e->reason};
        // Checkpoint when the WAL reaches journal_size_limit, not after SQLite's 1000 pages (1 MiB
        // with 1 KiB pages): a checkpoint copies each page once however often it changed since
        // the last one, so fewer checkpoints copy the outbox's few hot pages fewer times.
        if (auto page = detail::query_int(db.get(), "PRAGMA page_size"); page && *page > 0) {
            const std::string ac = "PRAGMA wal_autocheckpoint = " +
                                   std::to_string(std::max<std::int64_t>(1000, options.journal_size_limit / *page));
            if (auto e = detail::exec(db.get(), ac.c_str())) return Error{"store " + path + ": " + e->reason};
        }
        if (options.max_page_count != 0) {
            const std::string mpc = "PRAGMA max_page_count = " + std::to_string(options.max_page_count);
            if (auto e = detail::exec(db.get(), mpc.c_str())) return Error{"store " + path + ": " + e->reason};
        }

        auto meta_stmt = detail::prepare(
            db.get(), "UPDATE meta SET messages = ?, bytes = ?, last_seq = ?, acked_seq = ? WHERE id = 1");
        if (!meta_stmt) return Error{"store " + path + ": " + meta_stmt.error()};
        update_meta_stmt = std::move(meta_stmt).value();
        if (auto e = ring.open(db.get(), path)) return e;

        auto meta = detail::prepare(db.get(), "SELECT messages, bytes, last_seq FROM meta WHERE id = 1");
        if (!meta) return Error{meta.error()};
        if (sqlite3_step(meta->get()) != SQLITE_ROW) return Error{"store " + path + ": meta row missing"};
        counts->messages = static_cast<std::uint64_t>(sqlite3_column_int64(meta->get(), 0));
        counts->bytes = static_cast<std::uint64_t>(sqlite3_column_int64(meta->get(), 1));
        counts->last_seq = sqlite3_column_int64(meta->get(), 2);
        counts->oldest_enqueued_ms = query_oldest();
        return inbox.open(db.get(), path, options.now_ms);
    }

    void register_metrics(metrics::Registry& r) {
        auto c = counts;
        auto now = options.now_ms;
        r.gauge_fn("hubgate_store_messages", "Messages in the D2C outbox", {},
                   [c] { return static_cast<double>(c->messages.load(std::memory_order_relaxed)); });
        r.gauge_fn("hubgate_store_bytes", "Stored bytes in the D2C outbox", {},
                   [c] { return static_cast<double>(c->bytes.load(std::memory_order_relaxed)); });
        r.gauge_fn("hubgate_store_oldest_age_seconds", "Age of the oldest message in the D2C outbox", {},
                   [c, now] {
                       const auto oldest = c->oldest_enqueued_ms.load(std::memory_order_relaxed);
                       if (oldest == 0) return 0.0;
                       return std::max(0.0, static_cast<double>(now() - oldest) / 1000.0);
                   });
        appended_total = &r.counter("hubgate_store_appended_total", "Messages made durable in the outbox");
        removed_total = &r.counter("hubgate_store_removed_total", "Acknowledged messages deleted from the outbox");
        commits_total = &r.counter("hubgate_store_commits_total", "Store write transactions committed");
        dropped_ttl = &r.counter("hubgate_store_dropped_total", "Messages dropped from the outbox",
                                 {{"reason", "ttl"}});
        dropped_overflow = &r.counter("hubgate_store_dropped_total", "Messages dropped from the outbox",
                                      {{"reason", "overflow"}});
        rejected_full = &r.counter("hubgate_store_rejected_total", "Messages refused by the outbox",
                                   {{"reason", "full"}});
        rejected_disk_full = &r.counter("hubgate_store_rejected_total", "Messages refused by the outbox",
                                        {{"reason", "disk_full"}});
        commit_errors = &r.counter("hubgate_store_commit_errors_total", "Store write transactions rolled back");
        inbox.register_metrics(r);
    }

    std::int64_t query_oldest() { return ring.oldest_enqueued_ms(); }

    // ---- the writer thread -----------------------------------------------------------------------

    void run() {
        WorkQueue work;
        next_sweep = std::chrono::steady_clock::now() + options.sweep_interval;
        for (;;) {
            heartbeat.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
            bool stop = false;
            bool idle = false;
            {
                std::unique_lock lock(mu);
                auto ready = [&] { return stopping || !queue.empty(); };
                const auto wake = std::min(next_sweep, std::chrono::steady_clock::now() + options.heartbeat_interval);
                idle = !vacuum_check && !cv.wait_until(lock, wake, ready) && wake < next_sweep;
            }
            if (idle) {  // a whole heartbeat interval without work
                release_memory();
                continue;
            }
            release_memory();  // C2D polls keep the writer from ever idling a whole interval
            {
                std::unique_lock lock(mu);
                hold_group(lock);
                std::swap(work, queue);
                queued_bytes = 0;
                stop = stopping && work.empty();
            }
            if (stop) break;

            commit_group(work);
            const bool maintain_now = !work.maintains.empty();
            if (maintain_now || std::chrono::steady_clock::now() >= next_sweep) {
                sweep();
                next_sweep = std::chrono::steady_clock::now() + options.sweep_interval;
            }
            if (maintain_now) {
                purge();
                vacuum(true);
                checkpoint(SQLITE_CHECKPOINT_TRUNCATE);
            } else if (vacuum_check) {
                vacuum(false);  // one bounded step; the loop comes back without waiting if more is due
            }
            for (auto& p : work.flushes) p.set_value();
            for (auto& p : work.maintains) p.set_value();
            work.clear();
        }
    }

    // The commit window: appends wait until commit_window_ms after the previous commit, so that
    // at low rates one transaction (one fsync, one set of WAL frames for the pages it touches)
    // carries many messages instead of one; a group of group_commit_bytes goes at once. Removes
    // alone wait remove_delay, or ride along with the next appends. Anything else (C2D work,
    // flush, maintain, close) commits the whole queue at once. Called with mu held.
    void hold_group(std::unique_lock<std::mutex>& lock) {
        const auto window = std::chrono::milliseconds(options.limits.commit_window_ms);
        if (window.count() == 0) return;
        for (;;) {
            if (stopping || !queue.inbox.empty() || !queue.flushes.empty() || !queue.maintains.empty() ||
                queued_bytes >= options.group_commit_bytes)
                return;
            std::chrono::steady_clock::time_point due;
            // The window runs from the last commit: a message after a quiet spell commits at once,
            // and under load commits come at most once per window.
            if (!queue.appends.empty()) due = std::max(first_append, last_commit + window);
            else if (!queue.removes.empty()) due = first_remove + options.remove_delay;
            else return;
            if (std::chrono::steady_clock::now() >= due) return;
            cv.wait_until(lock, due);
        }
    }

    // Once per quiet spell after work: gives back what a burst or a drained backlog left behind
    // (SQLite's page cache beyond what is in use, then glibc's free heap in every thread's arena,
    // which it otherwise keeps), so memory comes back near its idle size (docs/BENCHMARKS.md).
    void release_memory() {
        if (!worked_since_release || vacuum_check) return;
        if (std::chrono::steady_clock::now() - last_commit < options.release_memory_after) return;
        worked_since_release = false;
        sqlite3_db_release_memory(db.get());
#if defined(__GLIBC__)
        malloc_trim(0);
#endif
    }

    bool step_done(sqlite3_stmt* s) { return sqlite3_step(s) == SQLITE_DONE; }

    // Takes rows that left the outbox off the transaction's counts.
    static void take_off(const detail::Removed& r, TxState& tx, std::uint64_t& counter) {
        counter += r.rows;
        tx.messages -= std::min<std::uint64_t>(r.rows, tx.messages);
        tx.bytes -= std::min(r.bytes, tx.bytes);
        if (r.rows > 0) tx.deleted_any = true;
    }

    bool update_meta(const TxState& tx) {
        sqlite3_stmt* s = update_meta_stmt.get();
        detail::ResetGuard reset(s);
        sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(tx.messages));
        sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(tx.bytes));
        sqlite3_bind_int64(s, 3, tx.last_seq);
        sqlite3_bind_int64(s, 4, ring.acked());
        return step_done(s);
    }

    TxState begin_state() {
        TxState tx;
        tx.messages = counts->messages.load();
        tx.bytes = counts->bytes.load();
        tx.last_seq = counts->last_seq.load();
        ring.begin();
        return tx;
    }

    // Acknowledgements in seq order only move the ring's marker (no row page is written); a table
    // whose rows are all acknowledged is then emptied at once (outbox_ring.hpp).
    bool apply_removes(std::vector<RemoveRequest>& removes, TxState& tx) {
        std::vector<SeqRange> ranges;
        for (const auto& r : removes) ranges.insert(ranges.end(), r.ranges.begin(), r.ranges.end());
        if (ranges.empty()) return true;
        std::sort(ranges.begin(), ranges.end(), [](const SeqRange& a, const SeqRange& b) { return a.first < b.first; });
        for (const auto& range : ranges) {
            detail::Removed gone;
            if (!ring.acknowledge(range.first, range.last, tx.last_seq, gone)) return false;
            take_off(gone, tx, tx.removed);
        }
        return ring.clear_acknowledged();
    }

    std::string full_reason(bool by_count, const TxState& tx) const {
        const auto& l = options.limits;
        if (by_count)
            return "store full: " + std::to_string(tx.messages) + "/" + std::to_string(l.max_messages) +
                   " messages (on_full = reject-new)";
        return "store full: " + std::to_string(tx.bytes) + "/" + std::to_string(l.max_bytes) +
               " bytes (on_full = reject-new)";
    }

    // Inserts one request's messages; fills `result` with how many fit. False on an SQLite error.
    bool apply_append(AppendRequest& req, TxState& tx, AppendResult& result) {
        const auto& l = options.limits;
        const bool drop_oldest = l.on_full == config::OnFull::drop_oldest;
        for (auto& m : req.messages) {
            if (m.enqueued_ms == 0) m.enqueued_ms = options.now_ms();
            encode_properties(m.system, m.properties, props_buf);
            const std::uint64_t size = m.body.size() + props_buf.size() + m.device_id.size() + m.module_id.size();
            if (size > l.max_bytes || l.max_messages == 0) {
                // Dropping every other message would not make room for this one.
                result.outcome = AppendOutcome::rejected_full;
                result.reason = "store full: a message of " + std::to_string(size) +
                                " stored bytes exceeds the store's max_bytes " + std::to_string(l.max_bytes);
                break;
            }
            const auto fits = [&] { return tx.messages + 1 <= l.max_messages && tx.bytes + size <= l.max_bytes; };
            if (!fits()) {
                if (!drop_oldest) {
                    result.outcome = AppendOutcome::rejected_full;
                    result.reason = full_reason(tx.messages + 1 > l.max_messages, tx);
                    break;
                }
                while (!fits() && tx.messages > 0) {
                    detail::Removed gone;
                    if (!ring.delete_oldest(gone)) return false;
                    take_off(gone, tx, tx.dropped_overflow);
                    if (gone.rows == 0) break;  // counts disagree with the table; insert anyway
                }
            }
            // A table fills to the larger of segment_min_bytes and what the older tables hold: a
            // backlog spreads over tables that double in size, so most of it is freed table by table
            // as it drains.
            const std::uint64_t segment = std::max<std::uint64_t>(options.segment_min_bytes, tx.bytes / 2);
            if (!ring.insert(tx.last_seq + 1, m.enqueued_ms, m.device_id, m.module_id, size, props_buf, m.body,
                             segment))
                return false;
            ++tx.last_seq;
            ++tx.messages;
            tx.bytes += size;
            ++tx.inserted;
            ++result.durable;
        }
        tx.rejected_full += req.messages.size() - result.durable;
        return true;
    }

    void rollback() {
        if (!sqlite3_get_autocommit(db.get())) (void)detail::exec(db.get(), "ROLLBACK");
        ring.rollback();
    }

    void publish(const TxState& tx) {
        ring.commit();
        counts->messages = tx.messages;
        counts->bytes = tx.bytes;
        counts->last_seq = tx.last_seq;
        if (tx.messages == 0) counts->oldest_enqueued_ms = 0;
        else if (tx.deleted_any || counts->oldest_enqueued_ms.load() == 0) counts->oldest_enqueued_ms = query_oldest();
        commits_total->inc();
        if (tx.deleted_any) vacuum_check = true;
        if (disk_full_logged) {
            spdlog::info("store: writes succeed again on {}", path);
            disk_full_logged = false;
        }
    }

    // Called with the SQLite result code of the failed step; rolls back and describes the failure.
    std::pair<AppendOutcome, std::string> fail(int rc, const char* during) {
        std::string what = detail::errmsg(db.get());
        rollback();
        commit_errors->inc();
        if (rc == SQLITE_FULL) {
            std::string reason = "store disk full: cannot grow " + path + " (" +
                                 std::to_string(counts->messages.load()) + " messages stored)";
            if (!disk_full_logged) {
                spdlog::error("store: {} ({}); refusing appends until a commit succeeds", reason, what);
                disk_full_logged = true;
            }
            return {AppendOutcome::disk_full, std::move(reason)};
        }
        spdlog::error("store: {} failed on {}: {}", during, path, what);
        return {AppendOutcome::failed, "store write failed: " + what};
    }

    // One transaction: removes first (they make room), then appends in arrival order, then the
    // inbox work of `part` in arrival order. Returns false when the transaction rolled back;
    // outcome/reason say why.
    // With `purge`, acknowledged rows still in tables not yet emptied are deleted before the
    // appends, whose inserts reuse their pages (the retry of a group that found the disk full).
    bool run_transaction(std::vector<RemoveRequest>& removes, std::vector<AppendRequest>& appends,
                         InboxQueue& inbox_work, InboxPart part, std::vector<AppendResult>& results, TxState& tx,
                         std::pair<AppendOutcome, std::string>& failure, bool purge = false) {
        tx = begin_state();
        inbox.begin();
        results.assign(appends.size(), AppendResult{});
        if (sqlite3_exec(db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
            failure = fail(sqlite3_errcode(db.get()), "begin");
            return false;
        }
        bool ok = apply_removes(removes, tx);
        if (ok && purge) {
            std::uint64_t purged = 0;
            ok = ring.purge_acknowledged(purged);
            if (purged > 0) tx.deleted_any = true;
        }
        for (std::size_t i = 0; ok && i < appends.size(); ++i) ok = apply_append(appends[i], tx, results[i]);
        for (std::size_t i = 0; ok && i < inbox_work.size(); ++i)
            if (in_part(inbox_work[i], part)) ok = inbox_work[i]->apply(inbox);
        ok = ok && update_meta(tx) && inbox.end();
        if (ok && sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK) {
            inbox.commit();
            return true;
        }
        failure = fail(sqlite3_errcode(db.get()), "commit");
        return false;
    }

    void finish_inbox(InboxQueue& inbox_work, InboxPart part, bool committed) {
        for (auto& w : inbox_work)
            if (in_part(w, part)) {
                run_callback("inbox", [&] { w->finish(committed); });
                w.reset();  // finished exactly once
            }
    }

    // A group with nothing but inbox reads needs no write transaction (and counts no commit).
    static bool only_inbox_reads(const WorkQueue& work) noexcept {
        if (!work.appends.empty() || !work.removes.empty() || work.inbox.empty()) return false;
        return std::none_of(work.inbox.begin(), work.inbox.end(), [](const auto& w) { return w->writes(); });
    }

    void run_inbox_reads(InboxQueue& inbox_work) {
        for (auto& w : inbox_work) {
            const bool ok = w->apply(inbox);
            if (!ok) spdlog::error("store: C2D inbox read failed on {}: {}", path, detail::errmsg(db.get()));
            run_callback("inbox", [&] { w->finish(ok); });
        }
    }

    void commit_group(WorkQueue& work) {
        if (work.appends.empty() && work.removes.empty() && work.inbox.empty()) return;
        if (only_inbox_reads(work)) {
            run_inbox_reads(work.inbox);
            return;
        }
        last_commit = std::chrono::steady_clock::now();
        worked_since_release = true;
        std::vector<AppendResult> results;
        TxState tx;
        std::pair<AppendOutcome, std::string> failure;
        std::uint64_t committed_inserts = 0;
        bool ok = run_transaction(work.removes, work.appends, work.inbox, InboxPart::all, results, tx, failure);
        if (!ok && failure.first == AppendOutcome::disk_full)  // acknowledged rows may give the room
            ok = run_transaction(work.removes, work.appends, work.inbox, InboxPart::all, results, tx, failure, true);
        if (ok) {
            publish(tx);
            committed_inserts = tx.inserted;
            appended_total->inc(tx.inserted);
            removed_total->inc(tx.removed);
            dropped_overflow->inc(tx.dropped_overflow);
            rejected_full->inc(tx.rejected_full);
            if (tx.rejected_full > 0) {
                log_full_once(results);
            } else if (full_logged && tx.inserted > 0) {
                spdlog::info("store: {} has room again", path);
                full_logged = false;
            }
            for (std::size_t i = 0; i < work.appends.size(); ++i) {
                auto& req = work.appends[i];
                if (req.done) {
                    hand_back(req, results[i]);
                    run_callback("append", [&] { req.done(results[i]); });
                }
            }
            finish_inbox(work.inbox, InboxPart::all, true);
        } else {
            std::uint64_t refused = 0;
            for (auto& req : work.appends) refused += req.messages.size();
            if (failure.first == AppendOutcome::disk_full) rejected_disk_full->inc(refused);
            for (auto& req : work.appends) {
                if (!req.done) continue;
                AppendResult r{0, failure.first, failure.second, {}};
                hand_back(req, r);
                run_callback("append", [&] { req.done(r); });
            }
            // Inbox work that may grow the file fails with the appends (inbox_put answers failed).
            const bool inbox_grew =
                std::any_of(work.inbox.begin(), work.inbox.end(), [](const auto& w) { return w->grows(); });
            finish_inbox(work.inbox, InboxPart::growing, false);
            // Acknowledged deletes free space, and inbox reads and deletes need none: try them
            // alone before giving up on them (unless they were all the group had).
            const bool retry = !work.removes.empty() || std::any_of(work.inbox.begin(), work.inbox.end(),
                                                                    [](const auto& w) { return w != nullptr; });
            if (retry && (!work.appends.empty() || inbox_grew)) {
                std::vector<AppendRequest> none;
                if (run_transaction(work.removes, none, work.inbox, InboxPart::not_growing, results, tx, failure)) {
                    publish(tx);
                    removed_total->inc(tx.removed);
                    finish_inbox(work.inbox, InboxPart::not_growing, true);
                }
            }
            finish_inbox(work.inbox, InboxPart::all, false);  // what is left rolled back
        }
        // Removes that failed leave their rows in place: they are sent again after a restart
        // (at-least-once), never lost.
        for (auto& req : work.removes)
            if (req.done) run_callback("remove", [&] { req.done(); });
        if (committed_inserts > 0) {
            std::function<void(std::int64_t)> listener;
            {
                std::lock_guard lock(mu);
                listener = commit_listener;
            }
            if (listener) run_callback("commit listener", [&] { listener(tx.last_seq); });
        }
    }

    bool full_logged = false;  // "store full" is logged once until appends fit again
    void log_full_once(const std::vector<AppendResult>& results) {
        if (full_logged) return;
        for (const auto& r : results)
            if (r.outcome == AppendOutcome::rejected_full) {
                spdlog::warn("store: refusing appends: {}", r.reason);
                full_logged = true;
                return;
            }
    }

    // Removes expired messages from the head of the queue (oldest seq first), in bounded
    // transactions. A message enqueued out of time order waits until it reaches the head.
    void sweep() {
        const auto ttl = options.limits.ttl_seconds;
        if (ttl == 0) return;
        const std::int64_t cutoff = options.now_ms() - static_cast<std::int64_t>(ttl) * 1000;
        constexpr int kBatch = 10000;
        std::uint64_t swept = 0;
        for (;;) {
            TxState tx = begin_state();
            if (tx.messages == 0) break;
            if (sqlite3_exec(db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
                fail(sqlite3_errcode(db.get()), "TTL sweep");
                break;
            }
            std::int64_t upto = 0;
            int scanned = 0;
            bool head_expired = true;
            {
                sqlite3_stmt* s = ring.head(kBatch);
                if (s == nullptr) {
                    fail(sqlite3_errcode(db.get()), "TTL sweep");
                    break;
                }
                detail::ResetGuard reset(s);
                while (sqlite3_step(s) == SQLITE_ROW) {
                    ++scanned;
                    if (sqlite3_column_int64(s, 1) >= cutoff) {
                        head_expired = false;
                        break;
                    }
                    upto = sqlite3_column_int64(s, 0);
                }
            }
            if (upto == 0) {
                rollback();
                break;
            }
            // Every live row up to `upto` expired: like an acknowledgement of the head, the marker
            // moves past them and tables that hold nothing newer are emptied.
            std::uint64_t rows = 0;
            detail::Removed gone;
            bool ok = ring.acknowledge(ring.acked() + 1, upto, tx.last_seq, gone);
            if (ok) take_off(gone, tx, rows);
            if (!ok || !ring.clear_acknowledged() || !update_meta(tx) ||
                sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
                fail(sqlite3_errcode(db.get()), "TTL sweep");
                break;
            }
            publish(tx);
            dropped_ttl->inc(rows);
            swept += rows;
            if (!head_expired || scanned < kBatch) break;
        }
        if (swept > 0)
            spdlog::info("store: TTL sweep removed {} messages older than {} s ({} left)", swept, ttl,
                         counts->messages.load());
    }

    // maintain(): deletes the acknowledged rows that wait for the rest of their table, so that the
    // vacuum after it can give their space back.
    void purge() {
        begin_state();
        std::uint64_t rows = 0;
        if (sqlite3_exec(db.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK ||
            !ring.purge_acknowledged(rows) || sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
            fail(sqlite3_errcode(db.get()), "purge of acknowledged rows");
            return;
        }
        ring.commit();
        if (rows > 0) vacuum_check = true;
    }

    // Returns freed pages to the file system. Bounded steps keep appends from waiting behind it.
    // On its own the writer vacuums only once at most a quarter of the file is live: incremental
    // vacuum fills free pages with the pages at the end of the file, and while a backlog drains
    // from the head those are the newest live rows, each moved (written again) only to be deleted
    // soon after. The free pages are reused by appends in the meantime; the file does not grow.
    void vacuum(bool to_completion) {
        const std::int64_t threshold = to_completion ? 0 : options.vacuum_threshold_pages;
        bool vacuumed = false;
        for (;;) {
            auto free_pages = detail::query_int(db.get(), "PRAGMA freelist_count");
            if (!free_pages || *free_pages <= threshold) break;
            if (!to_completion) {
                auto pages = detail::query_int(db.get(), "PRAGMA page_count");
                if (!pages || *free_pages * 4 < *pages * 3) break;
                if (counts->messages.load() == 0) {
                    full_vacuum(*pages, *free_pages);
                    return;
                }
            }
            const std::string step = "PRAGMA incremental_vacuum(" + std::to_string(options.vacuum_step_pages) + ")";
            if (auto e = detail::exec(db.get(), step.c_str())) {
                spdlog::warn("store: incremental vacuum of {} failed: {}", path, e->reason);
                break;
            }
            vacuumed = true;
            if (!to_completion) return;  // vacuum_check stays set: the loop runs the next step
        }
        vacuum_check = false;
        // The file only shrinks when a checkpoint copies the vacuumed pages back: do it now.
        if (vacuumed && !to_completion) checkpoint();
    }

    // Once a large backlog has drained, the outbox is empty and the file mostly free pages. An
    // incremental vacuum then moves pages one by one, each looked up in a freelist of hundreds of
    // thousands of pages: after a 1 M drain its steps held every commit back for minutes (online
    // relay at a third of its rate). A full VACUUM copies only what is live (the inbox, twins,
    // registry: small), in memory, and the checkpoint after it shrinks the file.
    void full_vacuum(std::int64_t pages, std::int64_t free_pages) {
        const auto started = std::chrono::steady_clock::now();
        (void)detail::exec(db.get(), "PRAGMA temp_store = MEMORY");
        auto e = detail::exec(db.get(), "VACUUM");
        (void)detail::exec(db.get(), "PRAGMA temp_store = DEFAULT");
        vacuum_check = false;
        if (e) {
            spdlog::warn("store: vacuum of {} failed: {}", path, e->reason);
            return;
        }
        checkpoint();
        spdlog::info("store: outbox empty, {} of {} pages free: vacuumed {} in {} ms", free_pages, pages, path,
                     std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                         .count());
    }

    // PASSIVE never waits for readers; TRUNCATE (maintain()) also empties the WAL file.
    void checkpoint(int mode = SQLITE_CHECKPOINT_PASSIVE) {
        int log = 0, done = 0;
        sqlite3_wal_checkpoint_v2(db.get(), nullptr, mode, &log, &done);
    }
};

// ---- Store ---------------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() { close(); }

Result<std::unique_ptr<Store>> Store::open(Options options, metrics::Registry& registry) {
    auto impl = std::make_unique<Impl>();
    if (!options.now_ms) options.now_ms = unix_ms;
    impl->path = options.limits.path;
    impl->options = std::move(options);
    if (auto e = impl->open_db()) return *e;
    impl->register_metrics(registry);
    const auto& c = *impl->counts;
    spdlog::info("store: opened {} (schema version {}, {} messages, {} bytes, last seq {}, durability {}, on_full {})",
                 impl->path, schema_version(), c.messages.load(), c.bytes.load(), c.last_seq.load(),
                 impl->options.limits.durability == config::Durability::power ? "power" : "process",
                 impl->options.limits.on_full == config::OnFull::drop_oldest ? "drop-oldest" : "reject-new");
    Impl* raw = impl.get();
    impl->writer = std::thread([raw] { raw->run(); });
    return std::unique_ptr<Store>(new Store(std::move(impl)));
}

void Store::append(std::vector<HubMessage> messages, AppendCallback done) {
    std::size_t bytes = 0;
    for (const auto& m : messages) bytes += m.body.size() + m.device_id.size() + m.module_id.size();
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->closed) {
            if (impl_->queue.appends.empty()) impl_->first_append = std::chrono::steady_clock::now();
            impl_->queued_bytes += bytes;
            impl_->queue.appends.push_back(AppendRequest{std::move(messages), std::move(done)});
            impl_->cv.notify_one();
            return;
        }
    }
    if (done) {
        AppendResult r{0, AppendOutcome::failed, "store closed", std::move(messages)};
        done(r);
    }
}

void Store::remove(std::vector<SeqRange> acked, std::function<void()> done) {
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->closed) {
            if (impl_->queue.removes.empty()) impl_->first_remove = std::chrono::steady_clock::now();
            impl_->queue.removes.push_back(RemoveRequest{std::move(acked), std::move(done)});
            impl_->cv.notify_one();
            return;
        }
    }
    if (done) done();
}

void Store::enqueue_inbox(std::unique_ptr<detail::InboxWork> work) {
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->closed) {
            impl_->queue.inbox.push_back(std::move(work));
            impl_->cv.notify_one();
            return;
        }
    }
    work->finish(false);
}

std::uint64_t Store::inbox_count() const noexcept {
    return impl_->inbox.count->load(std::memory_order_relaxed);
}

void Store::set_commit_listener(std::function<void(std::int64_t)> listener) {
    std::lock_guard lock(impl_->mu);
    impl_->commit_listener = std::move(listener);
}

Stats Store::stats() const noexcept {
    const auto& c = *impl_->counts;
    return Stats{c.messages.load(), c.bytes.load(), c.oldest_enqueued_ms.load(), c.last_seq.load()};
}

void Store::flush() {
    std::future<void> done;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->closed) return;
        done = impl_->queue.flushes.emplace_back().get_future();
        impl_->cv.notify_one();
    }
    done.wait();
}

void Store::maintain() {
    std::future<void> done;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->closed) return;
        done = impl_->queue.maintains.emplace_back().get_future();
        impl_->cv.notify_one();
    }
    done.wait();
}

void Store::close() {
    std::lock_guard close_lock(impl_->close_mu);
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->closed) return;
        impl_->closed = true;
        impl_->stopping = true;
        impl_->cv.notify_one();
    }
    if (impl_->writer.joinable()) impl_->writer.join();
    impl_->checkpoint();
    // Statements first: a connection with live statements cannot close.
    impl_->update_meta_stmt.reset();
    impl_->ring.close();
    impl_->inbox.close();
    impl_->db.reset();
    spdlog::info("store: closed {} ({} messages)", impl_->path, impl_->counts->messages.load());
}

const std::string& Store::path() const noexcept { return impl_->path; }

std::chrono::steady_clock::time_point Store::writer_heartbeat() const noexcept {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(impl_->heartbeat.load(std::memory_order_relaxed)));
}

int schema_version() noexcept { return static_cast<int>(schema::steps().size()); }

const char* to_string(AppendOutcome outcome) noexcept {
    switch (outcome) {
        case AppendOutcome::durable: return "durable";
        case AppendOutcome::rejected_full: return "rejected_full";
        case AppendOutcome::disk_full: return "disk_full";
        case AppendOutcome::failed: return "failed";
    }
    return "unknown";
}

}  // namespace hubgate::store
