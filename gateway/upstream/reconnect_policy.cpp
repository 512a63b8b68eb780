#include "gateway/upstream/reconnect_policy.hpp"

#include <algorithm>

namespace hubgate::upstream {

namespace {

// Paho C's MQTTAsync.h return codes the classification names (not included here: pure code).
constexpr int kPahoFailure = -1;               // MQTTASYNC_FAILURE
constexpr int kPahoDisconnected = -3;          // MQTTASYNC_DISCONNECTED
constexpr int kPahoOperationIncomplete = -11;  // MQTTASYNC_OPERATION_INCOMPLETE (connect cut short)

std::chrono::milliseconds non_negative(std::chrono::milliseconds d) {
    return std::max(d, std::chrono::milliseconds(0));
}

ReconnectSchedule consistent(ReconnectSchedule s) {
    s.backoff_max = non_negative(s.backoff_max);
    s.backoff_min = std::min(non_negative(s.backoff_min), s.backoff_max);
    s.fast_min = std::min(non_negative(s.fast_min), s.backoff_max);
    s.fast_max = std::min(std::max(non_negative(s.fast_max), s.fast_min), s.backoff_max);
    s.fast_for = non_negative(s.fast_for);
    s.stable_after = non_negative(s.stable_after);
    return s;
}

}  // namespace

const char* to_string(FailureKind kind) noexcept {
    return kind == FailureKind::refused ? "refused" : "unreachable";
}

FailureKind classify_connect_failure(int rc, bool tls_failed) {
    if (rc > 0) return FailureKind::refused;  // a CONNACK return code: the hub answered no
    if (rc == kPahoFailure) return tls_failed ? FailureKind::refused : FailureKind::unreachable;
    if (rc == kPahoDisconnected || rc == kPahoOperationIncomplete) return FailureKind::unreachable;
    return FailureKind::refused;  // a local problem (bad options, SSL not supported, ...)
}

ReconnectPolicy::ReconnectPolicy(ReconnectSchedule schedule)
    : schedule_(consistent(schedule)),
      backoff_(schedule_.backoff_min, schedule_.backoff_max, Backoff::Jitter::equal) {}

std::chrono::milliseconds ReconnectPolicy::next_delay(FailureKind kind, std::chrono::milliseconds into_outage,
                                                      std::mt19937_64& rng) {
    if (kind == FailureKind::unreachable && into_outage < schedule_.fast_for) {
        last_phase_ = Phase::fast;
        return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(
            schedule_.fast_min.count(), schedule_.fast_max.count())(rng));
    }
    last_phase_ = Phase::backoff;
    return std::min(backoff_.next_delay(rng), schedule_.backoff_max);
}

void ReconnectPolicy::begin_outage(Clock::time_point now) noexcept {
    if (!outage_start_) outage_start_ = now;
}

std::chrono::milliseconds ReconnectPolicy::into_outage(Clock::time_point now) const noexcept {
    if (!outage_start_ || now <= *outage_start_) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - *outage_start_);
}

bool ReconnectPolicy::connection_ended(std::chrono::milliseconds lasted, std::uint64_t acked_publishes) noexcept {
    const bool healthy = acked_publishes > 0 || lasted >= schedule_.stable_after;
    if (healthy) reset();
    return healthy;
}

std::chrono::milliseconds ReconnectPolicy::on_failure(FailureKind kind, Clock::time_point now, std::mt19937_64& rng) {
    begin_outage(now);
    return next_delay(kind, into_outage(now), rng);
}

void ReconnectPolicy::reset() noexcept {
    backoff_.reset();
    outage_start_.reset();
    last_phase_ = Phase::fast;
}

}  // namespace hubgate::upstream
