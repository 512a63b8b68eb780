#include "gateway/pairing/auth_throttle.hpp"

#include <algorithm>

namespace hubgate::pairing {

std::chrono::milliseconds AuthThrottle::failed(std::string_view address, Clock::time_point now) {
    const std::string key(address);
    auto it = sources_.find(key);
    if (it == sources_.end()) {
        if (sources_.size() >= o_.max_sources)
            std::erase_if(sources_, [&](const auto& kv) { return now - kv.second.last >= o_.forget; });
        // Still full: many addresses failing at once (a spoofed flood). Track nothing new; the
        // ones tracked keep their delays.
        if (sources_.size() >= o_.max_sources) return o_.max_delay;
        it = sources_.emplace(key, Source{}).first;
    } else if (now - it->second.last >= o_.forget) {
        it->second.failures = 0;
    }
    Source& s = it->second;
    s.last = now;
    if (s.failures < 64) ++s.failures;
    if (s.failures <= o_.free_failures) return std::chrono::milliseconds(0);
    const std::uint32_t doublings = std::min<std::uint32_t>(s.failures - o_.free_failures - 1, 20);
    const auto delay = o_.first_delay * (std::int64_t{1} << doublings);
    return std::min<std::chrono::milliseconds>(delay, o_.max_delay);
}

}  // namespace hubgate::pairing
