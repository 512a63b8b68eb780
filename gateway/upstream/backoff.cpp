#include "gateway/upstream/backoff.hpp"

#include <algorithm>

namespace hubgate::upstream {

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, Jitter jitter)
    : min_(std::max<std::int64_t>(0, min.count())),
      max_(std::max<std::int64_t>(min_, max.count())),
      jitter_(jitter),
      ceiling_(min_),
      previous_(min_) {}

std::chrono::milliseconds Backoff::next_delay(std::mt19937_64& rng) {
    ++attempts_;
    std::int64_t delay = 0;
    if (jitter_ == Jitter::full || jitter_ == Jitter::equal) {
        const std::int64_t low = jitter_ == Jitter::full ? 0 : ceiling_ / 2;
        delay = std::uniform_int_distribution<std::int64_t>(low, ceiling_)(rng);
        // Doubling saturates at max; the comparison avoids overflow for huge maxima.
        ceiling_ = ceiling_ > max_ / 2 ? max_ : std::max<std::int64_t>(1, ceiling_ * 2);
        ceiling_ = std::min(ceiling_, max_);
    } else {
        const std::int64_t upper = previous_ > max_ / 3 ? max_ : std::max(min_, previous_ * 3);
        delay = std::min(max_, std::uniform_int_distribution<std::int64_t>(min_, std::max(min_, upper))(rng));
        previous_ = std::max<std::int64_t>(1, delay);
    }
    return std::chrono::milliseconds(delay);
}

void Backoff::reset() noexcept {
    ceiling_ = min_;
    previous_ = min_;
    attempts_ = 0;
}

}  // namespace hubgate::upstream
