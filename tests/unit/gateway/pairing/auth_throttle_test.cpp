#include <doctest/doctest.h>

#include "gateway/pairing/auth_throttle.hpp"

using namespace hubgate::pairing;
using namespace std::chrono_literals;

namespace {
const AuthThrottle::Clock::time_point t0 = AuthThrottle::Clock::time_point{} + 1000h;
}

TEST_CASE("the first two failures from an address are answered at once, then each waits twice as long up to 4 s") {
    AuthThrottle t;
    const std::chrono::milliseconds expected[] = {0ms, 0ms, 250ms, 500ms, 1000ms, 2000ms, 4000ms, 4000ms, 4000ms};
    auto now = t0;
    for (const auto e : expected) {
        CHECK(t.failed("10.0.0.9", now) == e);
        now += 1s;
    }
}

TEST_CASE("another address is not slowed by one that keeps failing") {
    AuthThrottle t;
    for (int i = 0; i < 10; ++i) t.failed("10.0.0.9", t0);
    CHECK(t.failed("10.0.0.9", t0) == 4000ms);
    CHECK(t.failed("10.0.0.10", t0) == 0ms);
}

TEST_CASE("failures are forgotten after 5 minutes without one") {
    AuthThrottle t;
    for (int i = 0; i < 10; ++i) t.failed("10.0.0.9", t0);
    CHECK(t.failed("10.0.0.9", t0 + 299s) == 4000ms);
    CHECK(t.failed("10.0.0.9", t0 + 299s + 300s) == 0ms);
}

TEST_CASE("at most max_sources addresses are tracked, forgotten ones make room") {
    AuthThrottle::Options o;
    o.max_sources = 3;
    AuthThrottle t(o);
    t.failed("a", t0);
    t.failed("b", t0);
    t.failed("c", t0);
    // Full, nothing to forget: a new address is held as long as the cap (a flood of sources).
    CHECK(t.failed("d", t0 + 1s) == o.max_delay);
    CHECK(t.sources() == 3);
    CHECK(t.failed("d", t0 + 400s) == 0ms);
    CHECK(t.sources() == 1);
}
