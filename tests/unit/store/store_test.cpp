#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <future>
#include <latch>
#include <thread>

#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

std::vector<std::string> expected_ids(const std::string& prefix, int first, int count) {
    std::vector<std::string> ids;
    for (int i = first; i < first + count; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
}

// Stored bytes of make_message(id, body_bytes) as the store accounts them.
std::uint64_t stored_size(const std::string& id, std::size_t body_bytes) {
    StoreFixture probe;
    auto s = probe.open();
    REQUIRE(append_sync(*s, {make_message(id, body_bytes)}).durable == 1);
    return s->stats().bytes;
}

}  // namespace

TEST_CASE("appended messages are read back oldest first with every field intact") {
    StoreFixture f;
    auto store = f.open();
    HubMessage m = make_message("m-1", 50);
    m.system.content_type = "application/json";
    m.properties.set("temp", "21");
    m.properties.set("bare", std::nullopt);
    m.enqueued_ms = 42;
    auto r = append_sync(*store, {m, make_message("m-2")});
    CHECK(r.outcome == AppendOutcome::durable);
    CHECK(r.durable == 2);

    auto all = read_all(*store);
    REQUIRE(all.size() == 2);
    CHECK(all[0].message == m);
    CHECK(all[0].seq == 1);
    CHECK(all[1].seq == 2);
    CHECK(all[1].message.system.message_id == "m-2");
    CHECK(all[0].stored_bytes >= hub_size(m));
}

TEST_CASE("enqueued_ms is taken from the clock when the caller left it 0") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(append_sync(*store, {make_message("m-1")}).durable == 1);
    CHECK(read_all(*store)[0].message.enqueued_ms == kStartMs);
    CHECK(store->stats().oldest_enqueued_ms == kStartMs);
}

TEST_CASE("stats keep count, stored bytes, oldest time and last seq in step with appends and removes") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 3)).durable == 3);
    f.clock_ms += 1000;
    REQUIRE(append_sync(*store, make_messages("n-", 1, 2)).durable == 2);
    auto all = read_all(*store);
    std::uint64_t bytes = 0;
    for (const auto& m : all) bytes += m.stored_bytes;

    Stats s = store->stats();
    CHECK(s.messages == 5);
    CHECK(s.bytes == bytes);
    CHECK(s.oldest_enqueued_ms == kStartMs);
    CHECK(s.last_seq == 5);

    store->remove({{1, 3}});
    store->flush();
    s = store->stats();
    CHECK(s.messages == 2);
    CHECK(s.bytes == all[3].stored_bytes + all[4].stored_bytes);
    CHECK(s.oldest_enqueued_ms == kStartMs + 1000);
    CHECK(s.last_seq == 5);

    store->remove({{4, 5}});
    store->flush();
    CHECK(store->stats().messages == 0);
    CHECK(store->stats().bytes == 0);
    CHECK(store->stats().oldest_enqueued_ms == 0);
}

TEST_CASE("remove deletes exactly the acknowledged inclusive ranges and counts them") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 10)).durable == 10);
    std::promise<void> removed;
    store->remove({{2, 4}, {7, 7}, {50, 60}}, [&] { removed.set_value(); });
    removed.get_future().wait();
    std::vector<std::int64_t> seqs;
    for (const auto& m : read_all(*store)) seqs.push_back(m.seq);
    CHECK(seqs == std::vector<std::int64_t>{1, 5, 6, 8, 9, 10});
    CHECK(f.counter("hubgate_store_removed_total") == 4);
    CHECK(store->stats().messages == 6);
}

TEST_CASE("with reject-new, max_messages admits the first messages that fit and refuses the rest with a reason") {
    StoreFixture f;
    f.options.limits.max_messages = 3;
    f.options.limits.on_full = config::OnFull::reject_new;
    auto store = f.open();
    auto r = append_sync(*store, make_messages("m-", 1, 5));
    CHECK(r.durable == 3);
    CHECK(r.outcome == AppendOutcome::rejected_full);
    CHECK(r.reason == "store full: 3/3 messages (on_full = reject-new)");
    CHECK(message_ids(read_all(*store)) == expected_ids("m-", 1, 3));
    CHECK(f.counter("hubgate_store_rejected_total", {{"reason", "full"}}) == 2);
    CHECK(f.counter("hubgate_store_dropped_total", {{"reason", "overflow"}}) == 0);
    // The refused messages come back, in order, for the caller to retry once there is room.
    REQUIRE(r.unstored.size() == 2);
    CHECK(r.unstored[0].system.message_id == "m-4");
    CHECK(r.unstored[1].system.message_id == "m-5");

    store->remove({{1, 1}});  // room for one again
    auto again = append_sync(*store, {make_message("late")});
    CHECK(again.durable == 1);
    CHECK(again.outcome == AppendOutcome::durable);
}

TEST_CASE("with drop-oldest, max_messages keeps the newest messages and counts the dropped ones") {
    StoreFixture f;
    f.options.limits.max_messages = 3;
    f.options.limits.on_full = config::OnFull::drop_oldest;
    auto store = f.open();
    auto r = append_sync(*store, make_messages("m-", 1, 5));
    CHECK(r.durable == 5);
    CHECK(r.outcome == AppendOutcome::durable);
    CHECK(message_ids(read_all(*store)) == expected_ids("m-", 3, 3));
    CHECK(store->stats().messages == 3);
    CHECK(f.counter("hubgate_store_dropped_total", {{"reason", "overflow"}}) == 2);
}

TEST_CASE("with reject-new, max_bytes refuses the message that would exceed it with a bytes reason") {
    StoreFixture f;
    const auto one = stored_size("m-1", 100);
    f.options.limits.max_bytes = one * 2 + one / 2;  // room for two
    f.options.limits.on_full = config::OnFull::reject_new;
    auto store = f.open();
    auto r = append_sync(*store, make_messages("m-", 1, 3, 100));
    CHECK(r.durable == 2);
    CHECK(r.outcome == AppendOutcome::rejected_full);
    CHECK(r.reason == "store full: " + std::to_string(2 * one) + "/" + std::to_string(f.options.limits.max_bytes) +
                          " bytes (on_full = reject-new)");
    CHECK(store->stats().bytes == 2 * one);
    CHECK(f.counter("hubgate_store_rejected_total", {{"reason", "full"}}) == 1);
}

TEST_CASE("with drop-oldest, max_bytes drops the oldest messages until the new one fits") {
    StoreFixture f;
    const auto one = stored_size("m-1", 100);
    f.options.limits.max_bytes = one * 2 + one / 2;
    f.options.limits.on_full = config::OnFull::drop_oldest;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 2, 100)).durable == 2);
    auto r = append_sync(*store, make_messages("m-", 3, 2, 100));
    CHECK(r.durable == 2);
    CHECK(message_ids(read_all(*store)) == expected_ids("m-", 3, 2));
    CHECK(store->stats().bytes <= f.options.limits.max_bytes);
    CHECK(f.counter("hubgate_store_dropped_total", {{"reason", "overflow"}}) == 2);
}

TEST_CASE("a message larger than max_bytes is refused even with drop-oldest, and nothing is dropped for it") {
    StoreFixture f;
    f.options.limits.max_bytes = 500;
    f.options.limits.on_full = config::OnFull::drop_oldest;
    auto store = f.open();
    REQUIRE(append_sync(*store, {make_message("small")}).durable == 1);
    auto r = append_sync(*store, {make_message("big", 1000)});
    CHECK(r.durable == 0);
    CHECK(r.outcome == AppendOutcome::rejected_full);
    CHECK(r.reason.find("exceeds the store's max_bytes 500") != std::string::npos);
    CHECK(message_ids(read_all(*store)) == std::vector<std::string>{"small"});
}

TEST_CASE("the TTL sweep removes messages older than ttl_seconds and counts them") {
    StoreFixture f;
    f.options.limits.ttl_seconds = 100;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("old-", 1, 3)).durable == 3);
    f.clock_ms += 50'000;
    REQUIRE(append_sync(*store, make_messages("new-", 1, 2)).durable == 2);
    f.clock_ms += 60'000;  // old ones are 110 s old, new ones 60 s
    store->maintain();
    CHECK(message_ids(read_all(*store)) == expected_ids("new-", 1, 2));
    CHECK(f.counter("hubgate_store_dropped_total", {{"reason", "ttl"}}) == 3);
    CHECK(store->stats().messages == 2);
    CHECK(store->stats().oldest_enqueued_ms == kStartMs + 50'000);
}

TEST_CASE("disk full refuses the append with a reason, keeps the store intact, and recovers after a drain") {
    StoreFixture f;
    f.options.max_page_count = 48;  // ~192 KB database: SQLite answers SQLITE_FULL beyond it
    auto store = f.open();
    int appended = 0;
    AppendResult r;
    Stats before;
    for (int i = 0; i < 200; ++i) {
        before = store->stats();
        r = append_sync(*store, {make_message("m-" + std::to_string(i), 4000)});
        if (r.outcome != AppendOutcome::durable) break;
        ++appended;
    }
    REQUIRE(r.outcome == AppendOutcome::disk_full);
    CHECK(r.durable == 0);
    CHECK(r.reason.find("store disk full") != std::string::npos);
    REQUIRE(r.unstored.size() == 1);  // handed back for a retry
    CHECK(r.unstored[0].system.message_id == "m-" + std::to_string(appended));
    CHECK(f.counter("hubgate_store_rejected_total", {{"reason", "disk_full"}}) == 1);
    CHECK(f.counter("hubgate_store_commit_errors_total") >= 1);
    CHECK(store->stats().messages == before.messages);
    CHECK(store->stats().bytes == before.bytes);
    CHECK(store->stats().last_seq == before.last_seq);
    CHECK(read_all(*store).size() == static_cast<std::size_t>(appended));

    store->remove({{1, appended / 2}});
    store->flush();
    auto after = append_sync(*store, {make_message("after", 4000)});
    CHECK(after.outcome == AppendOutcome::durable);
    CHECK(read_all(*store).back().message.system.message_id == "after");
}

TEST_CASE("appends queued while a commit runs are committed together: 8 threads, 801 appends, at most 2 commits") {
    StoreFixture f;
    auto store = f.open();
    // The first append's callback runs on the writer thread and holds it until every other append
    // is queued: whatever queued meanwhile must then go into one transaction.
    std::latch all_queued(1);
    store->append({make_message("gate")}, [&](const AppendResult&) { all_queued.wait(); });
    constexpr int kThreads = 8, kPerThread = 100;
    std::atomic<int> durable{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i)
                    store->append({make_message("t" + std::to_string(t) + "-" + std::to_string(i))},
                                  [&](const AppendResult& r) { durable += static_cast<int>(r.durable); });
            });
    }
    all_queued.count_down();
    store->flush();
    CHECK(durable == kThreads * kPerThread);
    // 2 when the writer took the gate alone, 1 when the threads were quicker than it.
    CHECK(f.counter("hubgate_store_commits_total") <= 2);
    CHECK(f.counter("hubgate_store_appended_total") == kThreads * kPerThread + 1);
}

TEST_CASE("read returns oldest first after a seq, within the byte budget, at most max_count") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 10, 100)).durable == 10);
    auto reader = store->open_reader();
    REQUIRE(reader);
    std::vector<StoredMessage> out;
    REQUIRE_FALSE((*reader)->read(0, SIZE_MAX, SIZE_MAX, out));
    REQUIRE(out.size() == 10);
    const std::size_t one = out[0].stored_bytes;

    SUBCASE("stops before the running sum would exceed the budget") {
        REQUIRE_FALSE((*reader)->read(0, 3 * one + one / 2, SIZE_MAX, out));
        CHECK(message_ids(out) == expected_ids("m-", 1, 3));
    }
    SUBCASE("a budget equal to the sum is used up exactly") {
        REQUIRE_FALSE((*reader)->read(0, 4 * one, SIZE_MAX, out));
        CHECK(out.size() == 4);
    }
    SUBCASE("returns one message even when it alone exceeds the budget") {
        REQUIRE_FALSE((*reader)->read(0, 1, SIZE_MAX, out));
        CHECK(message_ids(out) == std::vector<std::string>{"m-1"});
    }
    SUBCASE("starts after after_seq") {
        REQUIRE_FALSE((*reader)->read(7, SIZE_MAX, SIZE_MAX, out));
        CHECK(message_ids(out) == expected_ids("m-", 8, 3));
    }
    SUBCASE("returns at most max_count") {
        REQUIRE_FALSE((*reader)->read(0, SIZE_MAX, 2, out));
        CHECK(message_ids(out) == expected_ids("m-", 1, 2));
    }
    SUBCASE("returns nothing past the last seq") {
        REQUIRE_FALSE((*reader)->read(10, SIZE_MAX, SIZE_MAX, out));
        CHECK(out.empty());
    }
}

TEST_CASE("reopening keeps the messages and the stats, and seq continues after an emptied store") {
    StoreFixture f;
    Stats before;
    std::vector<StoredMessage> before_rows;
    {
        auto store = f.open();
        REQUIRE(append_sync(*store, make_messages("m-", 1, 5)).durable == 5);
        store->remove({{1, 2}});
        store->flush();
        before = store->stats();
        before_rows = read_all(*store);
    }
    {
        auto store = f.open();
        const Stats s = store->stats();
        CHECK(s.messages == before.messages);
        CHECK(s.bytes == before.bytes);
        CHECK(s.oldest_enqueued_ms == before.oldest_enqueued_ms);
        CHECK(s.last_seq == 5);
        auto rows = read_all(*store);
        REQUIRE(rows.size() == before_rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            CHECK(rows[i].seq == before_rows[i].seq);
            CHECK(rows[i].message == before_rows[i].message);
        }
        store->remove({{1, 5}});
        store->flush();
    }
    {
        auto store = f.open();
        CHECK(store->stats().messages == 0);
        REQUIRE(append_sync(*store, {make_message("next")}).durable == 1);
        CHECK(read_all(*store)[0].seq == 6);
    }
}

TEST_CASE("incremental vacuum gives the space of deleted rows back to the file system") {
    StoreFixture f;
    f.options.vacuum_threshold_pages = 8;
    auto store = f.open();
    for (int i = 0; i < 20; ++i) REQUIRE(append_sync(*store, make_messages("m-", i * 100, 100, 1000)).durable == 100);
    store->maintain();  // checkpoint: the rows are in the main file now
    const auto full_size = std::filesystem::file_size(store->path());
    store->remove({{1, 1900}});
    store->maintain();
    const auto drained_size = std::filesystem::file_size(store->path());
    INFO("full " << full_size << " drained " << drained_size);
    CHECK(drained_size * 4 < full_size);
    CHECK(store->stats().messages == 100);
    CHECK(read_all(*store).size() == 100);
}

TEST_CASE("the commit listener learns the last seq after each commit that added rows") {
    StoreFixture f;
    auto store = f.open();
    std::vector<std::int64_t> seen;
    store->set_commit_listener([&](std::int64_t last) { seen.push_back(last); });
    REQUIRE(append_sync(*store, make_messages("m-", 1, 3)).durable == 3);
    store->remove({{1, 1}});
    store->flush();
    REQUIRE(append_sync(*store, {make_message("m-4")}).durable == 1);
    store->flush();  // the listener runs after the append callbacks of its commit
    CHECK(seen == std::vector<std::int64_t>{3, 4});
}

TEST_CASE("an append after close is answered at once as failed with a reason") {
    StoreFixture f;
    auto store = f.open();
    store->close();
    AppendResult got;
    store->append({make_message("late")}, [&](const AppendResult& r) { got = r; });
    CHECK(got.outcome == AppendOutcome::failed);
    CHECK(got.reason == "store closed");
}

TEST_CASE("close finishes queued appends before the writer stops") {
    StoreFixture f;
    std::atomic<int> durable{0};
    {
        auto store = f.open();
        for (int i = 0; i < 50; ++i)
            store->append({make_message("m-" + std::to_string(i))},
                          [&](const AppendResult& r) { durable += static_cast<int>(r.durable); });
        store->close();
    }
    CHECK(durable == 50);
    auto store = f.open();
    CHECK(store->stats().messages == 50);
}

TEST_CASE("the store registers its metrics under their fixed names") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(append_sync(*store, {make_message("m-1")}).durable == 1);
    const std::string text = f.registry.render();
    for (const char* name :
         {"hubgate_store_messages 1", "hubgate_store_bytes ", "hubgate_store_oldest_age_seconds 0",
          "hubgate_store_appended_total 1", "hubgate_store_removed_total 0", "hubgate_store_commits_total 1",
          "hubgate_store_dropped_total{reason=\"ttl\"} 0", "hubgate_store_dropped_total{reason=\"overflow\"} 0",
          "hubgate_store_rejected_total{reason=\"full\"} 0", "hubgate_store_rejected_total{reason=\"disk_full\"} 0",
          "hubgate_store_commit_errors_total 0"}) {
        INFO(name);
        CHECK(text.find(name) != std::string::npos);
    }
}

TEST_CASE("the writer heartbeat advances while the store is idle and stops when a callback wedges the writer") {
    StoreFixture f;
    f.options.heartbeat_interval = std::chrono::milliseconds(20);
    auto store = f.open();
    const auto first = store->writer_heartbeat();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto idle = store->writer_heartbeat();
    CHECK(idle > first);  // idle wakes, no work queued
    std::promise<void> release;
    auto released = release.get_future().share();
    store->remove({}, [released] { released.wait(); });  // the writer is stuck in this callback
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    const auto stuck = store->writer_heartbeat();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(store->writer_heartbeat() == stuck);
    release.set_value();
    for (int i = 0; i < 500 && store->writer_heartbeat() == stuck; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(store->writer_heartbeat() > stuck);
}

// ---- the commit window (SD-card wear) ----------------------------------------------------------

TEST_CASE("with a commit window, appends queued within it share one transaction and are answered only after it") {
    StoreFixture f;
    f.options.limits.commit_window_ms = 500;
    auto store = f.open();
    // The first append after a quiet spell commits at once and starts the window.
    REQUIRE(append_sync(*store, {make_message("first")}).durable == 1);
    REQUIRE(f.counter("hubgate_store_commits_total") == 1);

    // Two appends inside the window: each callback must find its own row committed (readable on a
    // connection of its own), i.e. no acknowledgement before the commit.
    std::promise<std::vector<std::string>> seen_a, seen_b;
    store->append({make_message("a")}, [&](const AppendResult& r) {
        CHECK(r.durable == 1);
        seen_a.set_value(message_ids(read_all(*store)));
    });
    store->append({make_message("b")}, [&](const AppendResult& r) {
        CHECK(r.durable == 1);
        seen_b.set_value(message_ids(read_all(*store)));
    });
    const auto a = seen_a.get_future().get();
    const auto b = seen_b.get_future().get();
    CHECK(a == std::vector<std::string>{"first", "a", "b"});
    CHECK(b == std::vector<std::string>{"first", "a", "b"});
    CHECK(f.counter("hubgate_store_commits_total") == 2);
}

TEST_CASE("with a commit window, acknowledged deletes ride along with the next appends' transaction") {
    StoreFixture f;
    f.options.limits.commit_window_ms = 500;
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 3)).durable == 3);
    const auto commits = f.counter("hubgate_store_commits_total");
    store->remove({{1, 2}});
    REQUIRE(append_sync(*store, {make_message("m-4")}).durable == 1);
    CHECK(f.counter("hubgate_store_commits_total") == commits + 1);
    CHECK(store->stats().messages == 2);
    CHECK(message_ids(read_all(*store)) == std::vector<std::string>{"m-3", "m-4"});
}

TEST_CASE("with a commit window, flush and close commit what waits at once") {
    StoreFixture f;
    f.options.limits.commit_window_ms = 1000;
    f.options.remove_delay = std::chrono::hours(1);
    auto store = f.open();
    REQUIRE(append_sync(*store, make_messages("m-", 1, 2)).durable == 2);
    std::promise<AppendResult> later;
    store->append({make_message("m-3")}, [&](const AppendResult& r) { later.set_value(r); });
    store->remove({{1, 1}});
    store->flush();
    CHECK(later.get_future().get().durable == 1);
    CHECK(store->stats().messages == 2);
    store->remove({{2, 2}});
    store->close();
    auto reopened = f.open();
    CHECK(reopened->stats().messages == 1);
}

TEST_CASE("a new store is created with 1 KiB pages") {
    StoreFixture f;
    auto store = f.open();
    store->close();
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(f.options.limits.path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == 1024);
    sqlite3_finalize(s);
    sqlite3_close(db);
}
