#include <doctest/doctest.h>

#include <string>

#include "gateway/pairing/pending_table.hpp"

using namespace hubgate::pairing;
using namespace std::chrono_literals;

namespace {
const PendingTable::Clock::time_point t0 = PendingTable::Clock::time_point{} + 1000h;
}

TEST_CASE("a repeated attempt updates one pending entry: last time, address and count") {
    PendingTable t;
    t.record("dev-1", "sensors", "10.0.0.5", t0);
    t.record("dev-1", "sensors", "10.0.0.6", t0 + 5s);
    const auto list = t.list(t0 + 6s);
    REQUIRE(list.size() == 1);
    CHECK(list[0].id == "dev-1");
    CHECK(list[0].enrollment == "sensors");
    CHECK(list[0].address == "10.0.0.6");
    CHECK(list[0].first == t0);
    CHECK(list[0].last == t0 + 5s);
    CHECK(list[0].count == 2);
}

TEST_CASE("pending entries are bounded: the 1001st id drops the least recently seen one") {
    PendingTable t(1000, 24h);
    for (int i = 0; i < 1000; ++i) t.record("dev-" + std::to_string(i), "e", "10.0.0.1", t0 + std::chrono::seconds(i));
    t.record("dev-0", "e", "10.0.0.1", t0 + 2000s);  // dev-0 is now the most recent
    t.record("new", "e", "10.0.0.1", t0 + 2001s);
    CHECK(t.size() == 1000);
    CHECK(t.evicted() == 1);
    CHECK(t.contains("dev-0"));
    CHECK_FALSE(t.contains("dev-1"));  // the least recently seen
    CHECK(t.contains("new"));
}

TEST_CASE("a pending entry expires 24 h after its last attempt") {
    PendingTable t;
    t.record("dev-1", "e", "10.0.0.1", t0);
    t.record("dev-1", "e", "10.0.0.1", t0 + 1h);
    CHECK(t.list(t0 + 1h + 24h - 1s).size() == 1);
    CHECK(t.list(t0 + 1h + 24h).empty());
    CHECK(t.size() == 0);
}

TEST_CASE("an attempt after expiry starts a new entry with count 1") {
    PendingTable t;
    t.record("dev-1", "e", "10.0.0.1", t0);
    t.record("dev-1", "e", "10.0.0.1", t0 + 25h);
    const auto list = t.list(t0 + 25h);
    REQUIRE(list.size() == 1);
    CHECK(list[0].count == 1);
    CHECK(list[0].first == t0 + 25h);
}

TEST_CASE("take removes and returns a live entry, and nothing for an expired or unknown one") {
    PendingTable t;
    t.record("dev-1", "e", "10.0.0.1", t0);
    t.record("dev-2", "e", "10.0.0.1", t0);
    CHECK_FALSE(t.take("nobody", t0).has_value());
    CHECK_FALSE(t.take("dev-2", t0 + 24h).has_value());
    const auto d = t.take("dev-1", t0 + 1s);
    REQUIRE(d.has_value());
    CHECK(d->id == "dev-1");
    CHECK(t.size() == 0);
}

TEST_CASE("the list is ordered by first attempt") {
    PendingTable t;
    t.record("b", "e", "a", t0 + 2s);
    t.record("a", "e", "a", t0 + 3s);
    t.record("c", "e", "a", t0 + 1s);
    const auto list = t.list(t0 + 4s);
    REQUIRE(list.size() == 3);
    CHECK(list[0].id == "c");
    CHECK(list[1].id == "b");
    CHECK(list[2].id == "a");
}
