// When the upstream client tries again after a failed connect or a lost connection (DESIGN.md,
// "Upstream clusters and flapping hubs"; docs/upstream.md has the schedule). Pure: the client feeds
// it failures, times and a random generator; unit-tested alone.
//
//   unreachable (TCP refused/timed out, connection lost), within fast_for of the outage's start:
//       uniform in [fast_min, fast_max] (a few hundred ms; a failed TCP connect costs the hub nothing)
//   unreachable later in the outage, or refused by the hub (CONNACK error, TLS or auth failure):
//       exponential backoff with equal jitter: uniform in [c/2, c], c = backoff_min, 2*backoff_min,
//       ... backoff_max
//   every delay is at most backoff_max.
//
// A connection that carried acknowledged publishes, or lasted stable_after, ends the outage: the
// backoff starts from backoff_min again and the next loss opens a new outage (a new fast window).
// One that carried nothing and died quickly does not, so a hub that accepts and drops at once still
// ends up backed off after fast_for.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "gateway/upstream/backoff.hpp"

namespace hubgate::upstream {

enum class FailureKind {
    unreachable,  // TCP refused or timed out, connection lost or reset before CONNACK
    refused,      // the hub said no: CONNACK 1-5, TLS or auth failure, a config that yields no CONNECT
};
const char* to_string(FailureKind kind) noexcept;  // "unreachable" / "refused" (the metrics' cause label)

// The kind of a failed connect, from Paho's report of it (Paho C 1.3.12, src/MQTTAsyncUtils.c):
// `rc` is mqtt::exception::get_return_code() of the connect token. CONNACK refusals come back as
// the CONNACK code (1-5: nextOrClose(m, connack->rc, "CONNACK return code")); a refused or reset TCP
// connect, the connect timeout and a failed TLS handshake all come back as MQTTASYNC_FAILURE (-1,
// "TCP/TLS connect failure", "TCP connect timeout", "socket error"); a connection that dropped while
// the session was being resumed as MQTTASYNC_DISCONNECTED (-3). Since -1 does not tell TLS from TCP,
// the client says whether an ssl:// hub accepted a plain TCP connection right after the failed
// attempt (`tls_failed`): then the handshake is what failed, and that is a refusal. Other negative
// codes are local misconfiguration (bad option, SSL unsupported, bad protocol): refused, since
// retrying soon cannot help.
FailureKind classify_connect_failure(int rc, bool tls_failed = false);

struct ReconnectSchedule {
    std::chrono::milliseconds fast_min{150};
    std::chrono::milliseconds fast_max{400};
    std::chrono::milliseconds fast_for{std::chrono::seconds(30)};  // [upstream] fast_retry_seconds
    std::chrono::milliseconds backoff_min{1000};                   // the first backoff step
    std::chrono::milliseconds backoff_max{10000};                  // [upstream] backoff_max_ms: every delay's cap
    std::chrono::milliseconds stable_after{10000};                 // a connection this long ends the outage
};

class ReconnectPolicy {
public:
    using Clock = std::chrono::steady_clock;
    enum class Phase { fast, backoff };

    // Bounds are made consistent: negative values become 0, fast_max >= fast_min, and backoff_min,
    // fast_min and fast_max are lowered to backoff_max.
    explicit ReconnectPolicy(ReconnectSchedule schedule);

    // The core rule: the delay before the next attempt after a failure of `kind`, `into_outage`
    // after the outage began. A backoff draw counts as one more step of the exponential backoff;
    // fast draws do not touch it.
    std::chrono::milliseconds next_delay(FailureKind kind, std::chrono::milliseconds into_outage, std::mt19937_64& rng);

    // The outage clock. begin_outage() opens one at `now` unless one is open already (a connection
    // that failed to count as healthy leaves the old one open).
    void begin_outage(Clock::time_point now) noexcept;
    std::chrono::milliseconds into_outage(Clock::time_point now) const noexcept;  // 0 if none open
    bool in_outage() const noexcept { return outage_start_.has_value(); }

    // A connection ended (lost, or closed to renew credentials) after lasting `lasted` and carrying
    // `acked_publishes`. Healthy (acked publishes, or it lasted stable_after): the backoff restarts
    // from backoff_min and the outage is closed, so the next begin_outage() starts a new fast window.
    // Returns whether it was healthy.
    bool connection_ended(std::chrono::milliseconds lasted, std::uint64_t acked_publishes) noexcept;

    // Convenience for the client: begin_outage(now), then next_delay() with the time into it.
    std::chrono::milliseconds on_failure(FailureKind kind, Clock::time_point now, std::mt19937_64& rng);

    // Forget everything (a stable connection closed on purpose).
    void reset() noexcept;

    Phase last_phase() const noexcept { return last_phase_; }
    const ReconnectSchedule& schedule() const noexcept { return schedule_; }

private:
    ReconnectSchedule schedule_;
    Backoff backoff_;
    std::optional<Clock::time_point> outage_start_;
    Phase last_phase_ = Phase::fast;
};

}  // namespace hubgate::upstream
