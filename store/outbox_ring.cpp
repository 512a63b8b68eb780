#include "store/outbox_ring.hpp"

#include <algorithm>
#include <limits>

namespace hubgate::store::detail {

std::string outbox_table(int k) { return k == 0 ? std::string("outbox") : "outbox_" + std::to_string(k); }

std::string outbox_union(std::string_view columns, std::string_view where) {
    std::string sql;
    for (int k = 0; k < kOutboxTables; ++k) {
        if (k > 0) sql += " UNION ALL ";
        sql += "SELECT ";
        sql += columns;
        sql += " FROM " + outbox_table(k) + " WHERE ";
        sql += where;
    }
    return sql;
}

Status OutboxRing::open(sqlite3* db, const std::string& path) {
    db_ = db;
    auto prep = [&](StmtPtr& into, const std::string& sql) -> Status {
        auto p = prepare(db, sql);
        if (!p) return Error{"store " + path + ": " + p.error()};
        into = std::move(p).value();
        return std::nullopt;
    };
    if (auto e = prep(next_live_, "SELECT min(s) FROM (" + outbox_union("min(seq) AS s", "seq > ?1") + ")")) return e;
    if (auto e = prep(count_between_, "SELECT count(*), total(size) FROM (" +
                                          outbox_union("size", "seq > ?1 AND seq <= ?2") + ")"))
        return e;
    if (auto e = prep(oldest_, outbox_union("seq, enqueued_ms", "seq > ?1") + " ORDER BY 1 LIMIT 1")) return e;

    State s;
    auto acked = query_int(db, "SELECT acked_seq FROM meta WHERE id = 1");
    if (!acked) return Error{"store " + path + ": " + acked.error()};
    s.acked = *acked;
    std::int64_t newest = 0;
    for (int k = 0; k < kOutboxTables; ++k) {
        const std::string sql = "SELECT coalesce(max(seq), 0) FROM " + outbox_table(k);
        auto max_seq = query_int(db, sql.c_str());
        if (!max_seq) return Error{"store " + path + ": " + max_seq.error()};
        auto& t = s.tables[static_cast<std::size_t>(k)];
        t.max_seq = *max_seq;
        t.rows = *max_seq != 0;
        if (*max_seq > newest) {
            newest = *max_seq;
            s.active = k;
        }
    }
    committed_ = work_ = s;
    return std::nullopt;
}

void OutboxRing::close() noexcept {
    for (auto* s : {&insert_, &next_live_, &count_between_, &oldest_, &head_}) s->reset();
    insert_table_ = -1;
}

sqlite3_stmt* OutboxRing::insert_statement() {
    if (insert_table_ != work_.active || !insert_) {
        insert_.reset();
        insert_table_ = -1;
        auto p = prepare(db_, "INSERT INTO " + outbox_table(work_.active) +
                                  " (seq, enqueued_ms, device_id, module_id, size, props, body) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?)");
        if (!p) return nullptr;
        insert_ = std::move(p).value();
        insert_table_ = work_.active;
    }
    return insert_.get();
}

StmtPtr OutboxRing::once(int k, std::string_view before, std::string_view after) {
    std::string sql(before);
    sql += outbox_table(k);
    sql += after;
    auto p = prepare(db_, sql);
    return p ? std::move(p).value() : StmtPtr{};
}

bool OutboxRing::next_live(std::int64_t after, std::int64_t& seq) {
    sqlite3_stmt* s = next_live_.get();
    ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, after);
    if (sqlite3_step(s) != SQLITE_ROW) return false;
    seq = sqlite3_column_type(s, 0) == SQLITE_NULL ? std::numeric_limits<std::int64_t>::max()
                                                   : sqlite3_column_int64(s, 0);
    return true;
}

bool OutboxRing::count_between(std::int64_t after, std::int64_t upto, Removed& out) {
    sqlite3_stmt* s = count_between_.get();
    ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, upto);
    if (sqlite3_step(s) != SQLITE_ROW) return false;
    out.rows += static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    out.bytes += static_cast<std::uint64_t>(sqlite3_column_double(s, 1));
    return true;
}

bool OutboxRing::acknowledge(std::int64_t first, std::int64_t last, std::int64_t last_seq, Removed& out) {
    last = std::min(last, last_seq);
    if (first > last || last <= work_.acked) return true;
    std::int64_t live = 0;
    if (!next_live(work_.acked, live)) return false;
    if (first <= live) {
        // Nothing live between the marker and `first`: everything up to `last` is acknowledged.
        if (!count_between(work_.acked, last, out)) return false;
        work_.acked = last;
        return true;
    }
    return delete_range(first, last, out);
}

bool OutboxRing::clear(int k) {
    // No WHERE, no RETURNING: SQLite's truncate optimization frees the pages without visiting rows.
    auto s = once(k, "DELETE FROM ", "");
    if (!s || sqlite3_step(s.get()) != SQLITE_DONE) return false;
    work_.tables[static_cast<std::size_t>(k)] = Table{};
    return true;
}

bool OutboxRing::clear_acknowledged() {
    for (int k = 0; k < kOutboxTables; ++k) {
        const auto& t = work_.tables[static_cast<std::size_t>(k)];
        if (t.rows && t.max_seq <= work_.acked && !clear(k)) return false;
    }
    return true;
}

bool OutboxRing::insert(std::int64_t seq, std::int64_t enqueued_ms, std::string_view device_id,
                        std::string_view module_id, std::uint64_t size, std::string_view props, std::string_view body,
                        std::uint64_t segment_bytes) {
    if (work_.active_bytes >= segment_bytes) {
        const int next = (work_.active + 1) % kOutboxTables;
        const auto& t = work_.tables[static_cast<std::size_t>(next)];
        if (!t.rows || t.max_seq <= work_.acked) {
            if (t.rows && !clear(next)) return false;
            work_.active = next;
            work_.active_bytes = 0;
        }
    }
    sqlite3_stmt* s = insert_statement();
    if (s == nullptr) return false;
    ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, enqueued_ms);
    bind_text(s, 3, device_id);
    bind_text(s, 4, module_id);
    sqlite3_bind_int64(s, 5, static_cast<sqlite3_int64>(size));
    bind_blob(s, 6, props);
    bind_blob(s, 7, body);
    if (sqlite3_step(s) != SQLITE_DONE) return false;
    auto& t = work_.tables[static_cast<std::size_t>(work_.active)];
    t.max_seq = seq;
    t.rows = true;
    work_.active_bytes += size;
    return true;
}

bool OutboxRing::purge_acknowledged(std::uint64_t& rows) {
    if (!clear_acknowledged()) return false;
    for (int k = 0; k < kOutboxTables; ++k) {
        if (!work_.tables[static_cast<std::size_t>(k)].rows) continue;
        auto s = once(k, "DELETE FROM ", " WHERE seq <= ?");
        if (!s) return false;
        sqlite3_bind_int64(s.get(), 1, work_.acked);
        if (sqlite3_step(s.get()) != SQLITE_DONE) return false;
        rows += static_cast<std::uint64_t>(sqlite3_changes(db_));
    }
    return true;
}

bool OutboxRing::delete_range(std::int64_t first, std::int64_t last, Removed& out) {
    first = std::max(first, work_.acked + 1);
    if (first > last) return true;
    for (int k = 0; k < kOutboxTables; ++k) {
        if (!work_.tables[static_cast<std::size_t>(k)].rows) continue;
        auto stmt = once(k, "DELETE FROM ", " WHERE seq BETWEEN ? AND ? RETURNING size");
        if (!stmt) return false;
        sqlite3_stmt* s = stmt.get();
        sqlite3_bind_int64(s, 1, first);
        sqlite3_bind_int64(s, 2, last);
        for (;;) {
            const int rc = sqlite3_step(s);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return false;
            ++out.rows;
            out.bytes += static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
        }
    }
    return true;
}

bool OutboxRing::delete_oldest(Removed& out) {
    std::int64_t live = 0;
    if (!next_live(work_.acked, live)) return false;
    if (live == std::numeric_limits<std::int64_t>::max()) return true;
    return delete_range(live, live, out);
}

std::int64_t OutboxRing::oldest_enqueued_ms() {
    sqlite3_stmt* s = oldest_.get();
    ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, work_.acked);
    return sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
}

sqlite3_stmt* OutboxRing::head(int limit) {
    if (!head_) {
        auto p = prepare(db_, outbox_union("seq, enqueued_ms", "seq > ?1") + " ORDER BY 1 LIMIT ?2");
        if (!p) return nullptr;
        head_ = std::move(p).value();
    }
    sqlite3_stmt* s = head_.get();
    sqlite3_bind_int64(s, 1, work_.acked);
    sqlite3_bind_int(s, 2, limit);
    return s;
}

}  // namespace hubgate::store::detail
