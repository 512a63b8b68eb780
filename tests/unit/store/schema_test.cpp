#include <doctest/doctest.h>
#include <sqlite3.h>

#include <array>
#include <fstream>

#include "store/schema.hpp"
#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

// A raw connection for looking at (or tampering with) the file the way another tool would.
struct RawDb {
    sqlite3* db = nullptr;
    explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
    ~RawDb() { sqlite3_close(db); }
    std::int64_t integer(const char* sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
        std::int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_finalize(s);
        return v;
    }
    std::string text(const char* sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
        std::string v = sqlite3_step(s) == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0)) : "";
        sqlite3_finalize(s);
        return v;
    }
    void exec(const char* sql) { REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK); }
};

}  // namespace

TEST_CASE("an empty file is migrated to the current schema with incremental auto-vacuum and WAL") {
    StoreFixture f;
    std::ofstream(f.options.limits.path).flush();  // exists, zero bytes
    {
        auto store = f.open();
    }
    RawDb raw(f.options.limits.path);
    CHECK(raw.integer("PRAGMA user_version") == schema_version());
    CHECK(raw.integer("PRAGMA auto_vacuum") == 2);  // 2 = incremental
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(raw.integer("SELECT count(*) FROM meta") == 1);
}

TEST_CASE("a store whose schema is newer than the code is refused with a clear error") {
    StoreFixture f;
    {
        auto store = f.open();
    }
    {
        RawDb raw(f.options.limits.path);
        raw.exec("PRAGMA user_version = 99");
    }
    auto s = Store::open(f.options, f.registry);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("schema version 99, newer than this hubgate understands") != std::string::npos);
}

TEST_CASE("a file with tables but no schema version is refused as not a hubgate store") {
    StoreFixture f;
    {
        RawDb raw(f.options.limits.path);
        raw.exec("CREATE TABLE other (x)");
    }
    auto s = Store::open(f.options, f.registry);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().find("not a hubgate store") != std::string::npos);
}

TEST_CASE("an appended migration step upgrades an older store in place and keeps its data") {
    StoreFixture f;
    {
        auto store = f.open();
        REQUIRE(append_sync(*store, make_messages("m-", 1, 3)).durable == 3);
    }
    const auto current = schema::steps();
    std::vector<std::string_view> next(current.begin(), current.end());
    next.push_back("CREATE TABLE future_table (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);");
    RawDb raw(f.options.limits.path);
    auto before = schema::migrate(raw.db, next, f.options.limits.path);
    REQUIRE(before.ok());
    CHECK(*before == schema_version());
    CHECK(raw.integer("PRAGMA user_version") == schema_version() + 1);
    CHECK(raw.integer("SELECT count(*) FROM future_table") == 0);
    CHECK(raw.integer("SELECT count(*) FROM outbox") == 3);
}

TEST_CASE("a failing migration step leaves the store at its old version, unchanged") {
    StoreFixture f;
    {
        auto store = f.open();
    }
    const auto current = schema::steps();
    std::vector<std::string_view> next(current.begin(), current.end());
    next.push_back("CREATE TABLE added (x); CREATE TABLE outbox (x);");  // second statement fails
    RawDb raw(f.options.limits.path);
    auto r = schema::migrate(raw.db, next, f.options.limits.path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("to schema version " + std::to_string(schema_version() + 1) + " failed") !=
          std::string::npos);
    CHECK(raw.integer("PRAGMA user_version") == schema_version());
    CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'added'") == 0);
}
