// Internal to store/*.cpp: the D2C outbox as a ring of tables (docs/store.md, "Deletes without
// rewriting rows"). Appends go to the active table; the hub's acknowledgements in seq order only
// move a marker (meta.acked_seq); a table whose every row is at or below the marker is emptied with
// one `DELETE FROM` (SQLite frees its pages without rewriting a row page). Only the rare deletes
// (acknowledgements out of order, TTL, drop-oldest) delete rows one by one.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"
#include "store/sqlite_util.hpp"

namespace hubgate::store::detail {

inline constexpr int kOutboxTables = 16;

// "outbox" (the table of schema versions before 8), then "outbox_1" ... "outbox_15".
std::string outbox_table(int k);
// `SELECT <columns> FROM <table> WHERE <where>` for every table, joined by UNION ALL.
std::string outbox_union(std::string_view columns, std::string_view where);

// Rows and stored bytes that left the outbox in one operation.
struct Removed {
    std::uint64_t rows = 0;
    std::uint64_t bytes = 0;
};

class OutboxRing {
public:
    // Prepares the statements and learns which tables hold rows. Writer connection only.
    Status open(sqlite3* db, const std::string& path);
    void close() noexcept;  // finalizes the statements (before the connection closes)

    // In-memory state follows the transaction: begin() before the first call of a transaction,
    // then commit() after COMMIT succeeded or rollback() after it failed.
    void begin() noexcept { work_ = committed_; }
    void commit() noexcept { committed_ = work_; }
    void rollback() noexcept { work_ = committed_; }

    std::int64_t acked() const noexcept { return work_.acked; }

    // The hub acknowledged [first, last]. When no live row lies between the marker and `first`,
    // the marker moves to `last` (no row is written); otherwise the rows are deleted. `last_seq`
    // caps the marker. False on an SQLite error.
    bool acknowledge(std::int64_t first, std::int64_t last, std::int64_t last_seq, Removed& out);
    // Empties every table whose rows are all at or below the marker. False on an SQLite error.
    bool clear_acknowledged();
    // Inserts into the active table, first moving on to the next one when the active table holds
    // at least `segment_bytes` and the next one is empty.
    bool insert(std::int64_t seq, std::int64_t enqueued_ms, std::string_view device_id, std::string_view module_id,
                std::uint64_t size, std::string_view props, std::string_view body, std::uint64_t segment_bytes);
    // Deletes the rows at or below the marker that wait in tables not yet emptied: space when the
    // disk is full, and Store::maintain(). Writes their pages; the counts already left them.
    bool purge_acknowledged(std::uint64_t& rows);
    // Deletes live rows with seq in [first, last] (rows at or below the marker are already gone).
    bool delete_range(std::int64_t first, std::int64_t last, Removed& out);
    // Deletes the oldest live row; out.rows stays 0 when there is none.
    bool delete_oldest(Removed& out);
    // enqueued_ms of the oldest live row, 0 when there is none.
    std::int64_t oldest_enqueued_ms();
    // The first `limit` live rows (seq, enqueued_ms), oldest first: the TTL sweep's look at the head.
    sqlite3_stmt* head(int limit);  // step it; reset by the caller (ResetGuard); nullptr on error

private:
    struct Table {
        std::int64_t max_seq = 0;  // highest seq inserted (0: none since it was last emptied)
        bool rows = false;         // may hold rows (cleared by emptying it)
    };
    struct State {
        std::int64_t acked = 0;
        int active = 0;
        std::uint64_t active_bytes = 0;  // inserted into the active table since it became active
        std::array<Table, kOutboxTables> tables{};
    };

    bool next_live(std::int64_t after, std::int64_t& seq);  // seq = INT64_MAX when none
    // The active table's insert statement (prepared again when the table changes; one prepared
    // statement per table would hold memory for tables that are not being written).
    sqlite3_stmt* insert_statement();
    // A statement on table k prepared for one use: the rare paths (emptying a table, out-of-order
    // deletes, purges) keep nothing prepared.
    StmtPtr once(int k, std::string_view sql_before_table, std::string_view sql_after_table);
    bool count_between(std::int64_t after, std::int64_t upto, Removed& out);
    bool clear(int k);

    sqlite3* db_ = nullptr;
    StmtPtr insert_;
    int insert_table_ = -1;
    StmtPtr next_live_, count_between_, oldest_, head_;
    State committed_, work_;
};

}  // namespace hubgate::store::detail
