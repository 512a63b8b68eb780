// Reconnect delays for the upstream client: exponential growth from min to max with jitter, so a
// fleet of gateways does not reconnect in lockstep when the hub returns. Pure; unit-tested alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace hubgate::upstream {

class Backoff {
public:
    // full: uniform in [0, ceiling], the ceiling doubling from min to max on every draw.
    // decorrelated: uniform in [min, 3 * previous delay], capped at max (AWS "decorrelated jitter").
    // equal: uniform in [ceiling / 2, ceiling], the ceiling doubling as for full: every delay is at
    // least half the exponential step, so a refusing hub is never retried at once.
    enum class Jitter { full, decorrelated, equal };

    // max below min is raised to min; a negative min is treated as 0.
    Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, Jitter jitter = Jitter::full);

    // The delay before the next attempt; every call counts as one more failed attempt.
    std::chrono::milliseconds next_delay(std::mt19937_64& rng);
    // After a connection that stayed up: the next delay starts from min again.
    void reset() noexcept;

    // The upper bound the next full- or equal-jitter draw uses (min, 2*min, 4*min, ... max).
    std::chrono::milliseconds ceiling() const noexcept { return std::chrono::milliseconds(ceiling_); }
    std::uint64_t attempts() const noexcept { return attempts_; }

private:
    std::int64_t min_;
    std::int64_t max_;
    Jitter jitter_;
    std::int64_t ceiling_;   // full and equal jitter
    std::int64_t previous_;  // decorrelated jitter
    std::uint64_t attempts_ = 0;
};

}  // namespace hubgate::upstream
