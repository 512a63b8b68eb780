#include "gateway/pairing/pending_table.hpp"

#include <algorithm>

namespace hubgate::pairing {

PendingTable::PendingTable(std::size_t limit, std::chrono::seconds ttl) : limit_(std::max<std::size_t>(limit, 1)), ttl_(ttl) {}

void PendingTable::expire(Clock::time_point now) {
    std::erase_if(entries_, [&](const auto& kv) { return now - kv.second.last >= ttl_; });
}

void PendingTable::record(std::string_view id, std::string_view enrollment, std::string_view address,
                          Clock::time_point now) {
    const std::string key(id);
    if (auto it = entries_.find(key); it != entries_.end() && now - it->second.last < ttl_) {
        it->second.enrollment = std::string(enrollment);
        it->second.address = std::string(address);
        it->second.last = now;
        ++it->second.count;
        return;
    }
    entries_.erase(key);
    if (entries_.size() >= limit_) {
        expire(now);
        if (entries_.size() >= limit_) {
            // O(limit) only when full: 1000 entries scanned on a refused attempt is microseconds.
            auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                           [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
            entries_.erase(oldest);
            ++evicted_;
        }
    }
    entries_.emplace(key, PendingDevice{key, std::string(enrollment), std::string(address), now, now, 1});
}

std::optional<PendingDevice> PendingTable::take(std::string_view id, Clock::time_point now) {
    auto it = entries_.find(std::string(id));
    if (it == entries_.end()) return std::nullopt;
    if (now - it->second.last >= ttl_) {
        entries_.erase(it);
        return std::nullopt;
    }
    PendingDevice d = std::move(it->second);
    entries_.erase(it);
    return d;
}

void PendingTable::remove(std::string_view id) { entries_.erase(std::string(id)); }

std::vector<PendingDevice> PendingTable::list(Clock::time_point now) {
    expire(now);
    std::vector<PendingDevice> out;
    out.reserve(entries_.size());
    for (const auto& [id, d] : entries_) out.push_back(d);
    std::sort(out.begin(), out.end(), [](const PendingDevice& a, const PendingDevice& b) {
        return a.first != b.first ? a.first < b.first : a.id < b.id;
    });
    return out;
}

}  // namespace hubgate::pairing
