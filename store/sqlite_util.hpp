// Internal to store/*.cpp: RAII for SQLite handles and a few helpers. Never include it from a public
// header; sqlite3.h must stay out of everything that includes store.hpp.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate::store::detail {

struct DbCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Resets a statement when the scope ends. A reset statement holds no read transaction, which is
// what lets checkpoints finish and keeps the WAL from growing.
class ResetGuard {
public:
    explicit ResetGuard(sqlite3_stmt* s) noexcept : s_(s) {}
    ~ResetGuard() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    ResetGuard(const ResetGuard&) = delete;
    ResetGuard& operator=(const ResetGuard&) = delete;

private:
    sqlite3_stmt* s_;
};

Result<DbPtr> open_db(const std::string& path, int flags);
Result<StmtPtr> prepare(sqlite3* db, std::string_view sql);
Status exec(sqlite3* db, const char* sql);
Result<std::int64_t> query_int(sqlite3* db, const char* sql);
// PRAGMA journal_mode = WAL, checked. The switch needs the file to itself, and SQLite answers BUSY
// at once (no busy handler) while another process's connection is using it, as when the CLI and a
// starting gateway open a new store together: retried for up to 5 s.
Status enable_wal(sqlite3* db, const std::string& path);
std::string errmsg(sqlite3* db);

inline int bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    return sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
inline int bind_blob(sqlite3_stmt* s, int i, std::string_view v) {
    // Zero-length blobs still bind as blobs (not NULL) so NOT NULL columns accept empty bodies.
    return sqlite3_bind_blob(s, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
inline std::string_view column_bytes(sqlite3_stmt* s, int i) {
    const void* p = sqlite3_column_blob(s, i);
    const int n = sqlite3_column_bytes(s, i);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string_view{};
}

}  // namespace hubgate::store::detail
