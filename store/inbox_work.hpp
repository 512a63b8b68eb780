// Internal to store/*.cpp: the inbox's writer-thread side (its prepared statements, seq and count)
// and InboxWork, one queued inbox request that store.cpp runs inside a commit group. inbox.cpp
// implements both; store.cpp only drives them. Never include it from a public header.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gateway/metrics/registry.hpp"
#include "store/sqlite_util.hpp"

namespace hubgate::store::detail {

struct InboxTables {
    sqlite3* db = nullptr;
    std::function<std::int64_t()> now_ms;
    std::string props_buf;  // reused for every row's encoded properties

    StmtPtr find_stmt, device_count_stmt, insert_stmt, next_stmt, set_count_stmt, delete_stmt,
        take_expired_stmt, devices_stmt, seen_stmt, route_stmt, update_seq_stmt;

    // Committed state; count is shared with the gauge so a scrape after close reads a stale number.
    std::shared_ptr<std::atomic<std::uint64_t>> count = std::make_shared<std::atomic<std::uint64_t>>(0);
    std::int64_t last_seq = 0;
    // The transaction's copy, published by commit().
    std::uint64_t tx_count = 0;
    std::int64_t tx_last_seq = 0;

    Status open(sqlite3* connection, const std::string& path, std::function<std::int64_t()> clock);
    void register_metrics(metrics::Registry& registry);
    void close() noexcept;  // finalizes the statements (a connection with live statements cannot close)

    void begin() noexcept {
        tx_count = count->load(std::memory_order_relaxed);
        tx_last_seq = last_seq;
    }
    // Before COMMIT: persists the seq counter if the transaction assigned seqs. False on error.
    bool end();
    void commit() noexcept {
        count->store(tx_count, std::memory_order_relaxed);
        last_seq = tx_last_seq;
    }
};

class InboxWork {
public:
    virtual ~InboxWork() = default;
    // False for pure reads: a group of only reads runs without a write transaction.
    virtual bool writes() const noexcept { return true; }
    // True when it may need new pages: after a failed group such work is refused with the appends,
    // while work that only reads or frees space is retried alone.
    virtual bool grows() const noexcept { return false; }
    // Runs inside the writer's transaction (may run again in a retry: start from scratch).
    // False = SQLite error; its code is on the connection.
    virtual bool apply(InboxTables& t) = 0;
    // After COMMIT (true) or a rollback / a closed store (false). Calls the user's callback.
    virtual void finish(bool committed) = 0;
};

}  // namespace hubgate::store::detail
