#include "store/sqlite_util.hpp"

#include <chrono>
#include <thread>

namespace hubgate::store::detail {

std::string errmsg(sqlite3* db) {
    return db ? sqlite3_errmsg(db) : "out of memory";
}

Result<DbPtr> open_db(const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) return Error{"cannot open store " + path + ": " + errmsg(raw)};
    sqlite3_extended_result_codes(raw, 0);
    // Only the writer writes; readers may briefly wait for a checkpoint or WAL recovery.
    sqlite3_busy_timeout(raw, 5000);
    return db;
}

Result<StmtPtr> prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &raw, nullptr);
    StmtPtr s(raw);
    if (rc != SQLITE_OK) return Error{"cannot prepare \"" + std::string(sql) + "\": " + errmsg(db)};
    return s;
}

Status exec(sqlite3* db, const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string reason = msg ? msg : errmsg(db);
        sqlite3_free(msg);
        return Error{std::move(reason)};
    }
    return std::nullopt;
}

Status enable_wal(sqlite3* db, const std::string& path) {
    auto mode = prepare(db, "PRAGMA journal_mode = WAL");
    if (!mode) return Error{"store " + path + ": " + mode.error()};
    for (int attempt = 0;; ++attempt) {
        const int rc = sqlite3_step(mode->get());
        const bool wal = rc == SQLITE_ROW && column_bytes(mode->get(), 0) == "wal";
        sqlite3_reset(mode->get());
        if (wal) return std::nullopt;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 250)
            return Error{"cannot put store " + path + " in WAL mode: " + errmsg(db)};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Result<std::int64_t> query_int(sqlite3* db, const char* sql) {
    auto s = prepare(db, sql);
    if (!s) return Error{s.error()};
    const int rc = sqlite3_step(s->get());
    if (rc == SQLITE_ROW) return static_cast<std::int64_t>(sqlite3_column_int64(s->get(), 0));
    if (rc == SQLITE_DONE) return std::int64_t{0};
    return Error{errmsg(db)};
}

}  // namespace hubgate::store::detail
