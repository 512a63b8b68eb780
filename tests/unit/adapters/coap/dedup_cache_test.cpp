// The duplicate-request cache that libcoap 4.3 lacks: keyed by peer and message id, bounded in time.
#include <doctest/doctest.h>

#include "adapters/coap/dedup_cache.hpp"

using namespace hubgate::coap;
using namespace std::chrono_literals;

TEST_CASE("the same peer and message id find the remembered answer") {
    DedupCache c(247s, 16);
    const auto t0 = DedupCache::Clock::time_point{} + 1000s;
    auto& e = c.insert(dedup_key("127.0.0.1:5000/udp", 7), t0);
    e.done = true;
    e.code_class = 2;
    e.code_detail = 4;
    auto* found = c.find(dedup_key("127.0.0.1:5000/udp", 7), t0 + 10s);
    REQUIRE(found);
    CHECK(found->done);
    CHECK(found->code_detail == 4);
}

TEST_CASE("another message id or another peer is not a duplicate") {
    DedupCache c(247s, 16);
    const auto t0 = DedupCache::Clock::time_point{} + 1000s;
    c.insert(dedup_key("127.0.0.1:5000/udp", 7), t0);
    CHECK(c.find(dedup_key("127.0.0.1:5000/udp", 8), t0) == nullptr);
    CHECK(c.find(dedup_key("127.0.0.1:5001/udp", 7), t0) == nullptr);
    CHECK(c.find(dedup_key("127.0.0.1:5000/dtls", 7), t0) == nullptr);
}

TEST_CASE("a newly inserted entry is pending until its answer is set") {
    DedupCache c;
    auto& e = c.insert("k", DedupCache::Clock::now());
    CHECK_FALSE(e.done);
}

TEST_CASE("entries older than the exchange lifetime are forgotten") {
    DedupCache c(247s, 16);
    const auto t0 = DedupCache::Clock::time_point{} + 1000s;
    c.insert("k", t0);
    CHECK(c.find("k", t0 + 246s) != nullptr);
    CHECK(c.find("k", t0 + 247s) == nullptr);
    c.insert("other", t0 + 300s);
    CHECK(c.size() == 1);
}

TEST_CASE("the cache never holds more than its bound, evicting the oldest") {
    DedupCache c(247s, 2);
    const auto t0 = DedupCache::Clock::time_point{} + 1000s;
    c.insert("a", t0);
    c.insert("b", t0 + 1s);
    c.insert("c", t0 + 2s);
    CHECK(c.size() == 2);
    CHECK(c.find("a", t0 + 3s) == nullptr);
    CHECK(c.find("c", t0 + 3s) != nullptr);
}
