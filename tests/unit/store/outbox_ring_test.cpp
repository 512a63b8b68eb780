// The outbox as a ring of tables (store/outbox_ring.hpp): acknowledgements in seq order move a
// marker, a table is emptied once all its rows are acknowledged, acknowledgements out of order
// still delete their rows, and all of it survives a reopen.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

// Rows physically in the outbox's tables, and the marker, read through a separate connection.
struct Peek {
    std::int64_t rows = 0;
    std::int64_t nonempty_tables = 0;
    std::int64_t acked = 0;
};
std::int64_t peek_int(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    const std::int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

Peek peek(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    auto integer = [&](const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
        const std::int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_finalize(s);
        return v;
    };
    Peek p;
    for (int k = 0; k < 16; ++k) {
        const std::string t = k == 0 ? "outbox" : "outbox_" + std::to_string(k);
        const auto n = integer("SELECT count(*) FROM " + t);
        p.rows += n;
        if (n > 0) ++p.nonempty_tables;
    }
    p.acked = integer("SELECT acked_seq FROM meta");
    sqlite3_close(db);
    return p;
}

}  // namespace

TEST_CASE("acknowledgements in seq order move the marker and empty whole tables, and the rest is read after a reopen") {
    StoreFixture f;
    f.options.segment_min_bytes = 2000;  // ~9 messages of 200 bytes per table at first
    {
        auto store = f.open();
        REQUIRE(append_sync(*store, make_messages("m-", 1, 100, 200)).durable == 100);
        const auto full = peek(store->path());
        CHECK(full.rows == 100);
        CHECK(full.nonempty_tables >= 4);  // tables of ~2 KB, 2 KB, 4 KB, 8 KB, ...

        store->remove({{1, 30}});
        store->remove({{31, 60}});
        store->flush();
        CHECK(store->stats().messages == 40);
        const auto half = peek(store->path());
        CHECK(half.acked == 60);
        CHECK(half.rows < 100);   // tables wholly at or below the marker were emptied
        CHECK(half.rows >= 40);   // the rest waits for the remainder of its table
        CHECK(half.nonempty_tables < full.nonempty_tables);
        const auto rows = read_all(*store);
        REQUIRE(rows.size() == 40);
        CHECK(rows.front().seq == 61);
    }
    {
        auto store = f.open();  // the marker is in the file: acknowledged rows stay acknowledged
        CHECK(store->stats().messages == 40);
        const auto rows = read_all(*store);
        REQUIRE(rows.size() == 40);
        CHECK(rows.front().seq == 61);
        CHECK(rows.front().message.system.message_id == "m-61");
        store->remove({{61, 100}});
        store->flush();
        CHECK(store->stats().messages == 0);
        CHECK(store->stats().bytes == 0);
        CHECK(peek(store->path()).rows == 0);  // every table emptied
        REQUIRE(append_sync(*store, {make_message("next", 200)}).durable == 1);
        REQUIRE(read_all(*store).size() == 1);
        CHECK(read_all(*store)[0].seq == 101);
    }
}

TEST_CASE("an acknowledgement out of order deletes its rows, and the marker later passes the gap") {
    StoreFixture f;
    f.options.segment_min_bytes = 2000;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 100, 200)).durable == 100);
    store->remove({{41, 50}});  // seq 1..40 not yet acknowledged
    store->flush();
    CHECK(store->stats().messages == 90);
    CHECK(peek(store->path()).acked == 0);
    CHECK(peek(store->path()).rows == 90);
    auto rows = read_all(*store);
    REQUIRE(rows.size() == 90);
    CHECK(rows[40].seq == 51);

    store->remove({{1, 40}});   // reaches the gap: the next live row is 51
    store->remove({{51, 100}});
    store->flush();
    CHECK(store->stats().messages == 0);
    CHECK(peek(store->path()).acked == 100);
    CHECK(peek(store->path()).rows == 0);
}

TEST_CASE("acknowledgements of one commit group in any order, and repeated ones, count each message once") {
    StoreFixture f;
    f.options.segment_min_bytes = 2000;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 60, 200)).durable == 60);
    store->flush();
    store->remove({{21, 40}, {1, 20}});
    store->remove({{1, 20}});  // the relay sends a range again after a reconnect
    store->flush();
    CHECK(store->stats().messages == 20);
    CHECK(peek(store->path()).acked == 40);
    const auto rows = read_all(*store);
    REQUIRE(rows.size() == 20);
    CHECK(rows.front().seq == 41);
    std::uint64_t left = 0;
    for (const auto& r : rows) left += r.stored_bytes;
    CHECK(store->stats().bytes == left);
}

TEST_CASE("a store with acknowledged rows waiting in a table gives their space when maintained") {
    StoreFixture f;
    f.options.segment_min_bytes = 1 << 30;  // one table
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 100, 200)).durable == 100);
    store->remove({{1, 99}});
    store->flush();
    CHECK(peek(store->path()).rows == 100);  // the table still holds seq 100
    store->maintain();
    CHECK(peek(store->path()).rows == 1);
    CHECK(store->stats().messages == 1);
    REQUIRE(read_all(*store).size() == 1);
    CHECK(read_all(*store)[0].message.system.message_id == "m-100");
}

TEST_CASE("once the outbox has drained and the file is mostly free pages, the writer vacuums it on its own") {
    StoreFixture f;
    f.options.vacuum_threshold_pages = 8;
    f.options.vacuum_step_pages = 5;  // incremental steps would stop with 4 to 8 free pages left
    auto store = f.open();
    for (int i = 0; i < 20; ++i) REQUIRE(append_sync(*store, make_messages("m-", i * 100, 100, 1000)).durable == 100);
    store->flush();
    const auto full_size = std::filesystem::file_size(store->path()) +
                           std::filesystem::file_size(store->path() + "-wal");
    store->remove({{1, 2000}});
    store->flush();
    REQUIRE(store->stats().messages == 0);
    // The writer's own loop (no maintain()): a full VACUUM, then a checkpoint that shrinks the file.
    std::uintmax_t size = full_size;
    for (int i = 0; i < 500 && size * 4 >= full_size; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        size = std::filesystem::file_size(store->path());
    }
    INFO("full " << full_size << " now " << size);
    CHECK(size * 4 < full_size);
    CHECK(peek_int(store->path(), "PRAGMA freelist_count") == 0);  // a full VACUUM, not steps
    REQUIRE(append_sync(*store, {make_message("after", 200)}).durable == 1);
    REQUIRE(read_all(*store).size() == 1);
    CHECK(read_all(*store)[0].seq == 2001);
}
