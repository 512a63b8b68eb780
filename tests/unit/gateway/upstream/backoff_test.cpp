#include "gateway/upstream/backoff.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using namespace hubgate::upstream;
using namespace std::chrono_literals;

TEST_CASE("full jitter: every delay lies between 0 and the ceiling and never above max") {
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
        std::mt19937_64 rng(seed);
        Backoff b(100ms, 30000ms, Backoff::Jitter::full);
        for (int i = 0; i < 40; ++i) {
            const auto ceiling = b.ceiling();
            const auto d = b.next_delay(rng);
            CHECK(d >= 0ms);
            CHECK(d <= ceiling);
            CHECK(d <= 30000ms);
        }
    }
}

TEST_CASE("decorrelated jitter: every delay lies between min and max") {
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
        std::mt19937_64 rng(seed);
        Backoff b(100ms, 30000ms, Backoff::Jitter::decorrelated);
        for (int i = 0; i < 40; ++i) {
            const auto d = b.next_delay(rng);
            CHECK(d >= 100ms);
            CHECK(d <= 30000ms);
        }
    }
}

TEST_CASE("full jitter: the ceiling doubles from min on every attempt and stops at max") {
    std::mt19937_64 rng(1);
    Backoff b(100ms, 30000ms);
    const std::vector<long> expected{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (const long c : expected) {
        CHECK(b.ceiling().count() == c);
        (void)b.next_delay(rng);
    }
    CHECK(b.attempts() == expected.size());
}

TEST_CASE("delays grow with the attempt count: late draws are larger on average than early ones") {
    for (const auto jitter : {Backoff::Jitter::full, Backoff::Jitter::decorrelated}) {
        std::mt19937_64 rng(7);
        long first_sum = 0;
        long tenth_sum = 0;
        for (int run = 0; run < 200; ++run) {
            Backoff b(100ms, 30000ms, jitter);
            for (int i = 1; i <= 10; ++i) {
                const long d = static_cast<long>(b.next_delay(rng).count());
                if (i == 1) first_sum += d;
                if (i == 10) tenth_sum += d;
            }
        }
        CHECK(tenth_sum > 10 * first_sum);
    }
}

TEST_CASE("reset() after a stable connection starts the delays from min again") {
    for (const auto jitter : {Backoff::Jitter::full, Backoff::Jitter::decorrelated}) {
        std::mt19937_64 rng(3);
        Backoff b(100ms, 30000ms, jitter);
        for (int i = 0; i < 20; ++i) (void)b.next_delay(rng);
        b.reset();
        CHECK(b.attempts() == 0);
        CHECK(b.ceiling() == 100ms);
        // decorrelated: uniform in [min, 3*min]; full: uniform in [0, min].
        CHECK(b.next_delay(rng) <= 300ms);
    }
}

TEST_CASE("a max below min is raised to min so delays never exceed the larger bound") {
    std::mt19937_64 rng(5);
    Backoff b(500ms, 100ms);
    for (int i = 0; i < 20; ++i) CHECK(b.next_delay(rng) <= 500ms);
}

TEST_CASE("equal jitter: every delay lies in the upper half of its doubling ceiling") {
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
        std::mt19937_64 rng(seed);
        Backoff b(1000ms, 10000ms, Backoff::Jitter::equal);
        for (int i = 0; i < 20; ++i) {
            const auto ceiling = b.ceiling();
            const auto d = b.next_delay(rng);
            CHECK(d >= ceiling / 2);
            CHECK(d <= ceiling);
        }
        CHECK(b.ceiling() == 10000ms);
    }
}
