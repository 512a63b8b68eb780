// Slows down repeated failed authentication from one source address: each refusal beyond the first
// `free_failures` is answered only after a delay that doubles up to a cap. A correct credential is
// never delayed (the adapters ask only when they refuse). Failures are forgotten after `forget`
// without one; at most `max_sources` addresses are tracked. Pure; io thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hubgate::pairing {

class AuthThrottle {
public:
    using Clock = std::chrono::steady_clock;
    struct Options {
        std::uint32_t free_failures = 2;  // a typo and an SDK's immediate retry cost nothing
        std::chrono::milliseconds first_delay{250};
        std::chrono::milliseconds max_delay{4000};  // below the 10 s CONNECT timeout
        std::chrono::seconds forget{300};
        std::size_t max_sources = 10000;
    };
    AuthThrottle() : AuthThrottle(Options{}) {}
    explicit AuthThrottle(Options o) : o_(o) {}

    // A refusal of a device at `address` (an IP): how long to wait before answering it.
    std::chrono::milliseconds failed(std::string_view address, Clock::time_point now);
    std::size_t sources() const noexcept { return sources_.size(); }

private:
    struct Source {
        std::uint32_t failures = 0;
        Clock::time_point last{};
    };
    Options o_;
    std::unordered_map<std::string, Source> sources_;
};

}  // namespace hubgate::pairing
