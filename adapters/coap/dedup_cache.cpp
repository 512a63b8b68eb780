#include "adapters/coap/dedup_cache.hpp"

namespace hubgate::coap {

std::string dedup_key(std::string_view peer, std::uint16_t message_id) {
    std::string k(peer);
    k += '#';
    k += std::to_string(message_id);
    return k;
}

DedupCache::DedupCache(Clock::duration lifetime, std::size_t max_entries)
    : lifetime_(lifetime), max_entries_(max_entries == 0 ? 1 : max_entries) {}

DedupCache::Entry* DedupCache::find(const std::string& key, Clock::time_point now) {
    auto it = entries_.find(key);
    if (it == entries_.end() || now - it->second.inserted >= lifetime_) return nullptr;
    return &it->second.entry;
}

DedupCache::Entry& DedupCache::insert(const std::string& key, Clock::time_point now) {
    evict(now);
    while (entries_.size() >= max_entries_ && !order_.empty()) {
        auto [k, t] = order_.front();
        order_.pop_front();
        auto it = entries_.find(k);
        if (it != entries_.end() && it->second.inserted == t) entries_.erase(it);
    }
    auto& slot = entries_[key];
    slot = Slot{Entry{}, now};
    order_.emplace_back(key, now);
    return slot.entry;
}

void DedupCache::evict(Clock::time_point now) {
    while (!order_.empty() && now - order_.front().second >= lifetime_) {
        auto it = entries_.find(order_.front().first);
        // Only erase if the map still holds the entry this queue item was made for.
        if (it != entries_.end() && it->second.inserted == order_.front().second) entries_.erase(it);
        order_.pop_front();
    }
}

}  // namespace hubgate::coap
