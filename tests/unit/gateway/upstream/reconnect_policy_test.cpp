#include "gateway/upstream/reconnect_policy.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace hubgate::upstream;
using namespace std::chrono_literals;

namespace {

ReconnectSchedule defaults() { return ReconnectSchedule{}; }  // 150-400 ms for 30 s, then 1 s .. 10 s

}  // namespace

TEST_CASE("Paho's return codes: CONNACK refusals are refused, socket failures and timeouts unreachable") {
    // CONNACK 1-5 come back as the CONNACK code (MQTTAsyncUtils.c: nextOrClose(m, connack->rc, ...)).
    for (int connack = 1; connack <= 5; ++connack) CHECK(classify_connect_failure(connack) == FailureKind::refused);
    // TCP refused, reset, connect timeout: MQTTASYNC_FAILURE (-1) with no TLS error.
    CHECK(classify_connect_failure(-1) == FailureKind::unreachable);
    // The connection dropped while the session was being resumed: MQTTASYNC_DISCONNECTED.
    CHECK(classify_connect_failure(-3) == FailureKind::unreachable);
    // The attempt cut short by our own disconnect: MQTTASYNC_OPERATION_INCOMPLETE.
    CHECK(classify_connect_failure(-11) == FailureKind::unreachable);
    // Local misconfiguration Paho rejects: bad protocol, SSL not supported, bad option.
    CHECK(classify_connect_failure(-14) == FailureKind::refused);
    CHECK(classify_connect_failure(-13) == FailureKind::refused);
    CHECK(classify_connect_failure(-15) == FailureKind::refused);
}

TEST_CASE("a failed TLS handshake (the same -1 as TCP) is a refusal once the hub is known to accept TCP") {
    CHECK(classify_connect_failure(-1, true) == FailureKind::refused);
    CHECK(classify_connect_failure(-1, false) == FailureKind::unreachable);
    CHECK(classify_connect_failure(5, false) == FailureKind::refused);
    CHECK(classify_connect_failure(-3, true) == FailureKind::unreachable);
    CHECK(std::string(to_string(FailureKind::unreachable)) == "unreachable");
    CHECK(std::string(to_string(FailureKind::refused)) == "refused");
}

TEST_CASE("unreachable within the fast window: every delay is 150-400 ms, jittered, however many attempts") {
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        std::mt19937_64 rng(seed);
        ReconnectPolicy p(defaults());
        std::vector<long> seen;
        for (int i = 0; i < 200; ++i) {
            const auto d = p.next_delay(FailureKind::unreachable, std::chrono::milliseconds(i * 140), rng);
            CHECK(d >= 150ms);
            CHECK(d <= 400ms);
            CHECK(p.last_phase() == ReconnectPolicy::Phase::fast);
            seen.push_back(static_cast<long>(d.count()));
        }
        // Jittered: not one fixed value (a fleet does not reconnect in lockstep).
        CHECK(*std::max_element(seen.begin(), seen.end()) - *std::min_element(seen.begin(), seen.end()) > 100);
    }
}

TEST_CASE("unreachable past fast_retry_seconds: exponential backoff with jitter from 1 s, capped at backoff_max") {
    std::mt19937_64 rng(11);
    ReconnectPolicy p(defaults());
    // Step n draws from [c/2, c], c = 1000, 2000, 4000, 8000, 10000, 10000, ...
    const std::vector<long> ceilings{1000, 2000, 4000, 8000, 10000, 10000, 10000};
    for (const long c : ceilings) {
        const auto d = p.next_delay(FailureKind::unreachable, 30s, rng);
        CHECK(p.last_phase() == ReconnectPolicy::Phase::backoff);
        CHECK(d.count() >= c / 2);
        CHECK(d.count() <= c);
    }
}

TEST_CASE("a refusal backs off at once, even in the first second of an outage") {
    std::mt19937_64 rng(5);
    ReconnectPolicy p(defaults());
    const auto first = p.next_delay(FailureKind::refused, 0ms, rng);
    CHECK(p.last_phase() == ReconnectPolicy::Phase::backoff);
    CHECK(first >= 500ms);
    CHECK(first <= 1000ms);
    const auto second = p.next_delay(FailureKind::refused, 1s, rng);
    CHECK(second >= 1000ms);
    CHECK(second <= 2000ms);
    // An unreachable failure meanwhile (hub went down) is retried fast and leaves the backoff's step.
    CHECK(p.next_delay(FailureKind::unreachable, 2s, rng) <= 400ms);
    const auto third = p.next_delay(FailureKind::refused, 3s, rng);
    CHECK(third >= 2000ms);
    CHECK(third <= 4000ms);
}

TEST_CASE("backoff_max caps every delay, the fast ones included, and fast_retry_seconds 0 disables the fast phase") {
    std::mt19937_64 rng(3);
    ReconnectSchedule s;
    s.backoff_max = 300ms;
    ReconnectPolicy capped(s);
    CHECK(capped.schedule().backoff_min == 300ms);  // lowered to the cap
    for (int i = 0; i < 100; ++i) {
        CHECK(capped.next_delay(FailureKind::unreachable, 0ms, rng) <= 300ms);
        CHECK(capped.next_delay(FailureKind::refused, 0ms, rng) <= 300ms);
        CHECK(capped.next_delay(FailureKind::unreachable, 60s, rng) <= 300ms);
    }
    ReconnectSchedule no_fast;
    no_fast.fast_for = 0s;
    ReconnectPolicy slow(no_fast);
    const auto d = slow.next_delay(FailureKind::unreachable, 0ms, rng);
    CHECK(slow.last_phase() == ReconnectPolicy::Phase::backoff);
    CHECK(d >= 500ms);
}

TEST_CASE("the outage clock starts at the first failure and is not moved by later ones") {
    std::mt19937_64 rng(1);
    ReconnectPolicy p(defaults());
    const ReconnectPolicy::Clock::time_point t0{};
    CHECK_FALSE(p.in_outage());
    CHECK(p.into_outage(t0 + 5s) == 0ms);
    CHECK(p.on_failure(FailureKind::unreachable, t0 + 1s, rng) <= 400ms);
    CHECK(p.in_outage());
    CHECK(p.on_failure(FailureKind::unreachable, t0 + 20s, rng) <= 400ms);
    CHECK(p.into_outage(t0 + 20s) == 19s);
    CHECK(p.on_failure(FailureKind::unreachable, t0 + 30s, rng) <= 400ms);  // 29 s in: still fast
    CHECK(p.on_failure(FailureKind::unreachable, t0 + 31s, rng) >= 500ms);  // 30 s in: backing off
    CHECK(p.last_phase() == ReconnectPolicy::Phase::backoff);
}

TEST_CASE("a flapping hub: connections that carried acknowledged publishes reset the backoff and start a new "
          "outage clock, so every outage is retried fast") {
    std::mt19937_64 rng(9);
    ReconnectPolicy p(defaults());
    ReconnectPolicy::Clock::time_point t{};
    // Ten flaps over 60 s: down ~2.5 s (about ten fast attempts), up ~3.5 s carrying publishes.
    for (int flap = 0; flap < 10; ++flap) {
        for (int attempt = 0; attempt < 10; ++attempt) {
            const auto d = p.on_failure(FailureKind::unreachable, t, rng);
            CHECK(d <= 400ms);
            t += d;
        }
        t += 3500ms;
        CHECK(p.connection_ended(3500ms, 120));
        CHECK_FALSE(p.in_outage());
    }
}

TEST_CASE("connections that carried nothing and died quickly neither reset the backoff nor restart the clock") {
    std::mt19937_64 rng(4);
    ReconnectPolicy p(defaults());
    ReconnectPolicy::Clock::time_point t{};
    // A hub that accepts and drops at once, forever: fast for 30 s of the outage, then backing off.
    std::chrono::milliseconds last{};
    while (t < ReconnectPolicy::Clock::time_point{} + 40s) {
        last = p.on_failure(FailureKind::unreachable, t, rng);
        t += last + 50ms;
        CHECK_FALSE(p.connection_ended(50ms, 0));
    }
    CHECK(p.last_phase() == ReconnectPolicy::Phase::backoff);
    // And the backoff kept growing: many steps in, the delays are near the cap.
    for (int i = 0; i < 5; ++i) last = p.on_failure(FailureKind::unreachable, t, rng);
    CHECK(last >= 5000ms);
    // A connection that lasted stable_after counts as healthy even without publishes.
    CHECK(p.connection_ended(10s, 0));
    CHECK_FALSE(p.in_outage());
    CHECK(p.on_failure(FailureKind::refused, t, rng) <= 1000ms);  // the backoff starts over
}

TEST_CASE("inconsistent bounds are made consistent rather than trusted") {
    ReconnectSchedule s;
    s.fast_min = 500ms;
    s.fast_max = 100ms;
    s.backoff_min = -5ms;
    ReconnectPolicy p(s);
    CHECK(p.schedule().fast_max == 500ms);
    CHECK(p.schedule().backoff_min == 0ms);
    std::mt19937_64 rng(2);
    CHECK(p.next_delay(FailureKind::unreachable, 0ms, rng) == 500ms);
}
