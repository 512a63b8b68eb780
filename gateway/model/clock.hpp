// Wall-clock time as the hub model counts it (Unix epoch), in one place for every stage.
#pragma once

#include <chrono>
#include <cstdint>

namespace hubgate {

inline std::int64_t unix_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline std::int64_t unix_seconds() noexcept { return unix_ms() / 1000; }

}  // namespace hubgate
