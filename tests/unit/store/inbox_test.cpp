#include <doctest/doctest.h>
#include <sqlite3.h>

#include <future>
#include <latch>

#include "store/device_registry.hpp"
#include "store/record_codec.hpp"
#include "store/schema.hpp"
#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

constexpr std::uint32_t kDepth = 50;

C2dMessage make_c2d(const std::string& device, const std::string& id, std::int64_t expires_ms = kStartMs + 3'600'000) {
    C2dMessage m;
    m.message.device_id = device;
    m.message.system.message_id = id;
    m.message.body = "body of " + id;
    m.expires_ms = expires_ms;
    return m;
}

struct PutResult {
    InboxPut result;
    std::int64_t seq;
};

PutResult put_sync(Store& s, C2dMessage m, std::uint32_t depth = kDepth) {
    std::promise<PutResult> p;
    auto f = p.get_future();
    s.inbox_put(std::move(m), depth, [&p](InboxPut r, std::int64_t seq) { p.set_value({r, seq}); });
    return f.get();
}

std::optional<C2dMessage> next_sync(Store& s, const std::string& device, std::int64_t after = 0) {
    std::promise<std::optional<C2dMessage>> p;
    auto f = p.get_future();
    s.inbox_next(device, after, [&p](std::optional<C2dMessage> m) { p.set_value(std::move(m)); });
    return f.get();
}

bool remove_sync(Store& s, std::int64_t seq) {
    std::promise<bool> p;
    auto f = p.get_future();
    s.inbox_remove(seq, [&p](bool existed) { p.set_value(existed); });
    return f.get();
}

std::vector<C2dMessage> take_expired_sync(Store& s, std::int64_t now) {
    std::promise<std::vector<C2dMessage>> p;
    auto f = p.get_future();
    s.inbox_take_expired(now, [&p](std::vector<C2dMessage> v) { p.set_value(std::move(v)); });
    return f.get();
}

std::vector<std::string> devices_sync(Store& s) {
    std::promise<std::vector<std::string>> p;
    auto f = p.get_future();
    s.inbox_devices([&p](std::vector<std::string> v) { p.set_value(std::move(v)); });
    return f.get();
}

// The recorded seen ids, as the gateway reads them at start and on SIGHUP (own connection).
std::vector<std::string> known_sync(const std::string& path) {
    auto reg = DeviceRegistry::open(path, false);
    REQUIRE_MESSAGE(reg.ok(), (reg.ok() ? "" : reg.error()));
    auto seen = (*reg)->seen();
    REQUIRE(seen.ok());
    return seen.value();
}

bool seen_sync(Store& s, const std::string& id) {
    std::promise<bool> p;
    auto f = p.get_future();
    s.device_seen(id, [&p](bool added) { p.set_value(added); });
    return f.get();
}

std::vector<std::string> ids_of(const std::vector<C2dMessage>& v) {
    std::vector<std::string> ids;
    for (const auto& m : v) ids.push_back(m.message.system.message_id);
    return ids;
}

}  // namespace

TEST_CASE("an inbox message is read back with every field after put, and remove deletes it") {
    StoreFixture f;
    auto store = f.open();
    C2dMessage m = make_c2d("dev-a", "c2d-1");
    m.message.system.correlation_id = "corr";
    m.message.system.content_type = "application/json";
    m.message.system.absolute_expiry_time = "2023-11-14T23:13:20Z";
    m.message.system.to = "/devices/dev-a/messages/devicebound";
    m.message.properties.set("k", "v");
    m.message.properties.set("bare", std::nullopt);
    m.message.body = std::string("\0\x01\xff binary", 10);
    m.delivery_count = 2;
    m.ack = AckMode::full;
    m.message.enqueued_ms = 1234;

    auto r = put_sync(*store, m);
    REQUIRE(r.result == InboxPut::queued);
    CHECK(r.seq == 1);
    CHECK(store->inbox_count() == 1);

    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    C2dMessage expected = m;
    expected.seq = r.seq;
    CHECK(*got == expected);

    CHECK(remove_sync(*store, r.seq));
    CHECK_FALSE(next_sync(*store, "dev-a").has_value());
    CHECK(store->inbox_count() == 0);
    CHECK_FALSE(remove_sync(*store, r.seq));  // already gone
}

TEST_CASE("inbox_put sets enqueued_ms from the clock when the caller left it 0") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(put_sync(*store, make_c2d("dev-a", "c2d-1")).result == InboxPut::queued);
    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    CHECK(got->message.enqueued_ms == kStartMs);
}

TEST_CASE("a message whose device and message id are already queued is answered duplicate and changes nothing") {
    StoreFixture f;
    auto store = f.open();
    auto first = put_sync(*store, make_c2d("dev-a", "c2d-1"));
    REQUIRE(first.result == InboxPut::queued);
    C2dMessage again = make_c2d("dev-a", "c2d-1");
    again.message.body = "a different body";
    auto second = put_sync(*store, again);
    CHECK(second.result == InboxPut::duplicate);
    CHECK(second.seq == first.seq);
    CHECK(store->inbox_count() == 1);
    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    CHECK(got->message.body == "body of c2d-1");
    CHECK_FALSE(next_sync(*store, "dev-a", first.seq).has_value());
    // The same message id for another device is another message.
    CHECK(put_sync(*store, make_c2d("dev-b", "c2d-1")).result == InboxPut::queued);
}

TEST_CASE("messages without a message id are never taken for duplicates of each other") {
    StoreFixture f;
    auto store = f.open();
    CHECK(put_sync(*store, make_c2d("dev-a", "")).result == InboxPut::queued);
    CHECK(put_sync(*store, make_c2d("dev-a", "")).result == InboxPut::queued);
    CHECK(store->inbox_count() == 2);
    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    CHECK(got->message.system.message_id.empty());
}

TEST_CASE("queue_depth is enforced per device and a full device does not affect others") {
    StoreFixture f;
    auto store = f.open();
    for (int i = 0; i < 3; ++i) REQUIRE(put_sync(*store, make_c2d("dev-a", "a-" + std::to_string(i)), 3).result == InboxPut::queued);
    auto full = put_sync(*store, make_c2d("dev-a", "a-3"), 3);
    CHECK(full.result == InboxPut::queue_full);
    CHECK(full.seq == 0);
    CHECK(store->inbox_count() == 3);
    CHECK(put_sync(*store, make_c2d("dev-b", "b-0"), 3).result == InboxPut::queued);
    CHECK(store->inbox_count() == 4);

    // Room again after a removal.
    auto oldest = next_sync(*store, "dev-a");
    REQUIRE(oldest.has_value());
    REQUIRE(remove_sync(*store, oldest->seq));
    CHECK(put_sync(*store, make_c2d("dev-a", "a-3"), 3).result == InboxPut::queued);
}

TEST_CASE("inbox_next returns the device's oldest message first and only those after after_seq") {
    StoreFixture f;
    auto store = f.open();
    const auto a1 = put_sync(*store, make_c2d("dev-a", "a-1")).seq;
    const auto b1 = put_sync(*store, make_c2d("dev-b", "b-1")).seq;
    const auto a2 = put_sync(*store, make_c2d("dev-a", "a-2")).seq;
    CHECK(a1 < b1);
    CHECK(b1 < a2);

    auto first = next_sync(*store, "dev-a", 0);
    REQUIRE(first.has_value());
    CHECK(first->seq == a1);
    CHECK(first->message.system.message_id == "a-1");
    auto second = next_sync(*store, "dev-a", a1);
    REQUIRE(second.has_value());
    CHECK(second->seq == a2);
    CHECK(second->message.system.message_id == "a-2");
    CHECK_FALSE(next_sync(*store, "dev-a", a2).has_value());
    CHECK_FALSE(next_sync(*store, "dev-none").has_value());
}

TEST_CASE("inbox_set_delivery_count persists the new count") {
    StoreFixture f;
    auto store = f.open();
    const auto seq = put_sync(*store, make_c2d("dev-a", "a-1")).seq;
    std::promise<void> p;
    store->inbox_set_delivery_count(seq, 7, [&p] { p.set_value(); });
    p.get_future().get();
    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    CHECK(got->delivery_count == 7);
}

TEST_CASE("inbox_take_expired removes exactly the messages with expires_ms at or before now and returns them") {
    StoreFixture f;
    auto store = f.open();
    const std::int64_t now = kStartMs + 10'000;
    REQUIRE(put_sync(*store, make_c2d("dev-a", "past", now - 1)).result == InboxPut::queued);
    REQUIRE(put_sync(*store, make_c2d("dev-a", "future", now + 1)).result == InboxPut::queued);
    REQUIRE(put_sync(*store, make_c2d("dev-b", "now", now)).result == InboxPut::queued);

    auto taken = take_expired_sync(*store, now);
    CHECK(ids_of(taken) == std::vector<std::string>{"past", "now"});
    REQUIRE(taken.size() == 2);
    CHECK(taken[0].message.device_id == "dev-a");
    CHECK(taken[0].expires_ms == now - 1);
    CHECK(taken[1].message.device_id == "dev-b");
    CHECK(taken[1].message.body == "body of now");
    CHECK(store->inbox_count() == 1);
    auto left = next_sync(*store, "dev-a");
    REQUIRE(left.has_value());
    CHECK(left->message.system.message_id == "future");
    CHECK_FALSE(next_sync(*store, "dev-b").has_value());
    CHECK(take_expired_sync(*store, now).empty());
}

TEST_CASE("inbox_devices lists each device with queued messages once") {
    StoreFixture f;
    auto store = f.open();
    CHECK(devices_sync(*store).empty());
    for (const auto& [device, id] : {std::pair{"dev-b", "b-1"}, {"dev-a", "a-1"}, {"dev-a", "a-2"}, {"dev-c", "c-1"}})
        REQUIRE(put_sync(*store, make_c2d(device, id)).result == InboxPut::queued);
    CHECK(devices_sync(*store) == std::vector<std::string>{"dev-a", "dev-b", "dev-c"});
    auto c1 = next_sync(*store, "dev-c");
    REQUIRE(c1.has_value());
    REQUIRE(remove_sync(*store, c1->seq));
    CHECK(devices_sync(*store) == std::vector<std::string>{"dev-a", "dev-b"});
}

TEST_CASE("device_seen records a device once and the registry lists every recorded device") {
    StoreFixture f;
    auto store = f.open();
    CHECK(known_sync(f.options.limits.path).empty());
    CHECK(seen_sync(*store, "dev-b"));
    CHECK(seen_sync(*store, "dev-a"));
    CHECK_FALSE(seen_sync(*store, "dev-b"));
    CHECK(known_sync(f.options.limits.path) == std::vector<std::string>{"dev-a", "dev-b"});
}

TEST_CASE("inbox messages and known devices survive close and reopen, and inbox seqs are never reused") {
    StoreFixture f;
    std::int64_t last = 0;
    {
        auto store = f.open();
        C2dMessage m = make_c2d("dev-a", "a-1");
        m.ack = AckMode::negative;
        REQUIRE(put_sync(*store, m).result == InboxPut::queued);
        last = put_sync(*store, make_c2d("dev-a", "a-2")).seq;
        REQUIRE(remove_sync(*store, last));  // the highest seq is gone before the restart
        REQUIRE(seen_sync(*store, "dev-k"));
    }
    auto store = f.open();
    CHECK(store->inbox_count() == 1);
    auto got = next_sync(*store, "dev-a");
    REQUIRE(got.has_value());
    CHECK(got->message.system.message_id == "a-1");
    CHECK(got->ack == AckMode::negative);
    CHECK(known_sync(f.options.limits.path) == std::vector<std::string>{"dev-k"});
    CHECK_FALSE(seen_sync(*store, "dev-k"));
    CHECK(devices_sync(*store) == std::vector<std::string>{"dev-a"});
    CHECK(put_sync(*store, make_c2d("dev-a", "a-3")).seq == last + 1);
}

TEST_CASE("a v1 store migrates to v2 and keeps its outbox rows") {
    StoreFixture f;
    {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open(f.options.limits.path.c_str(), &raw) == SQLITE_OK);
        const auto v1 = schema::steps().first(1);
        REQUIRE(schema::migrate(raw, v1, f.options.limits.path).ok());
        std::string props;
        SystemProperties sys;
        AppProperties app;
        sqlite3_stmt* ins = nullptr;
        REQUIRE(sqlite3_prepare_v2(raw,
                                   "INSERT INTO outbox (seq, enqueued_ms, device_id, module_id, size, props, body) "
                                   "VALUES (?, ?, 'dev-1', 'mod', ?, ?, 'body')",
                                   -1, &ins, nullptr) == SQLITE_OK);
        for (int seq = 1; seq <= 3; ++seq) {
            sys.message_id = "v1-" + std::to_string(seq);
            encode_properties(sys, app, props);
            sqlite3_bind_int(ins, 1, seq);
            sqlite3_bind_int64(ins, 2, kStartMs);
            sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(props.size() + 4 + 5 + 3));
            sqlite3_bind_blob(ins, 4, props.data(), static_cast<int>(props.size()), SQLITE_TRANSIENT);
            REQUIRE(sqlite3_step(ins) == SQLITE_DONE);
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        REQUIRE(sqlite3_exec(raw, "UPDATE meta SET messages = 3, bytes = 60, last_seq = 3", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(raw);
    }
    auto store = f.open();
    auto rows = read_all(*store);
    CHECK(message_ids(rows) == std::vector<std::string>{"v1-1", "v1-2", "v1-3"});
    CHECK(store->stats().messages == 3);
    CHECK(store->stats().last_seq == 3);
    CHECK(store->inbox_count() == 0);
    auto put = put_sync(*store, make_c2d("dev-a", "a-1"));
    CHECK(put.result == InboxPut::queued);
    CHECK(put.seq == 1);
    CHECK(append_sync(*store, {make_message("after")}).durable == 1);
    CHECK(read_all(*store).back().seq == 4);
}

TEST_CASE("inbox work queued together with outbox appends commits in the same transaction") {
    StoreFixture f;
    auto store = f.open();
    // The gate's callback runs on the writer thread after its commit and holds the writer until
    // everything below is queued: all of it must then go into one transaction.
    std::latch holding(1), queued(1);
    std::uint64_t commits_before = 0;
    store->append({make_message("gate")}, [&](const AppendResult&) {
        commits_before = f.counter("hubgate_store_commits_total");
        holding.count_down();
        queued.wait();
    });
    holding.wait();  // the gate committed alone; the writer is now held
    std::promise<PutResult> put;
    std::promise<bool> seen;
    std::promise<AppendResult> appended;
    store->inbox_put(make_c2d("dev-a", "a-1"), kDepth,
                     [&](InboxPut r, std::int64_t seq) { put.set_value({r, seq}); });
    store->append({make_message("m-1")}, [&](const AppendResult& r) { appended.set_value(r); });
    store->device_seen("dev-k", [&](bool added) { seen.set_value(added); });
    queued.count_down();
    store->flush();
    CHECK(put.get_future().get().result == InboxPut::queued);
    CHECK(appended.get_future().get().durable == 1);
    CHECK(seen.get_future().get());
    CHECK(f.counter("hubgate_store_commits_total") == commits_before + 1);
}

TEST_CASE("disk full answers inbox_put failed, leaves the inbox unchanged, and puts succeed again after space is freed") {
    StoreFixture f;
    f.options.max_page_count = 48;  // ~192 KB database: SQLite answers SQLITE_FULL beyond it
    auto store = f.open();
    const std::string big(4000, 'x');
    PutResult r{InboxPut::queued, 0};
    int queued = 0;
    for (; queued < 200; ++queued) {
        C2dMessage m = make_c2d("dev-a", "a-" + std::to_string(queued));
        m.message.body = big;
        r = put_sync(*store, m, 1000);
        if (r.result != InboxPut::queued) break;
    }
    REQUIRE(r.result == InboxPut::failed);
    CHECK(r.seq == 0);
    CHECK(f.counter("hubgate_store_commit_errors_total") >= 1);
    CHECK(store->inbox_count() == static_cast<std::uint64_t>(queued));
    CHECK(take_expired_sync(*store, 0).empty());  // reads and deletes still work

    // Free space by removing half, then the refused message fits.
    for (std::int64_t seq = 1; seq <= queued / 2; ++seq) REQUIRE(remove_sync(*store, seq));
    C2dMessage retry = make_c2d("dev-a", "a-" + std::to_string(queued));
    retry.message.body = big;
    auto again = put_sync(*store, retry, 1000);
    CHECK(again.result == InboxPut::queued);
    CHECK(again.seq == queued + 1);  // the failed put consumed no seq
}

TEST_CASE("inbox calls after close are answered at once: put failed, next nothing, lists empty") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(put_sync(*store, make_c2d("dev-a", "a-1")).result == InboxPut::queued);
    store->close();
    CHECK(put_sync(*store, make_c2d("dev-a", "a-2")).result == InboxPut::failed);
    CHECK_FALSE(next_sync(*store, "dev-a").has_value());
    CHECK(devices_sync(*store).empty());
    CHECK_FALSE(seen_sync(*store, "dev-k"));
}

TEST_CASE("the inbox gauge hubgate_c2d_inbox_messages counts queued inbox messages") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(put_sync(*store, make_c2d("dev-a", "a-1")).result == InboxPut::queued);
    REQUIRE(put_sync(*store, make_c2d("dev-b", "b-1")).result == InboxPut::queued);
    CHECK(f.registry.render().find("hubgate_c2d_inbox_messages 2") != std::string::npos);
}
