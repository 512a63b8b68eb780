// Server-side duplicate-request cache for confirmable CoAP requests (libcoap 4.3 has none): a
// retransmitted POST (same peer and message id within the exchange lifetime) is stored once and
// answered the same way. Pure (clock passed in); used by coap_server.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hubgate::coap {

// Peer text (address:port, plus the transport) and message id -> one key.
std::string dedup_key(std::string_view peer, std::uint16_t message_id);

class DedupCache {
public:
    using Clock = std::chrono::steady_clock;

    struct Entry {
        bool done = false;            // false: the commit is still pending (answer with an empty ACK)
        std::uint8_t code_class = 0;  // the final answer, once done
        std::uint8_t code_detail = 0;
        std::uint32_t max_age = 0;    // seconds; 0 = no Max-Age option
        std::string payload;
        std::int32_t content_format = -1;  // -1 = no Content-Format option (a diagnostic payload)
    };

    // RFC 7252 EXCHANGE_LIFETIME is 247 s; the bound keeps memory flat under a request flood.
    explicit DedupCache(Clock::duration lifetime = std::chrono::seconds(247), std::size_t max_entries = 4096);

    // The entry for `key` if it was inserted less than `lifetime` before `now`.
    Entry* find(const std::string& key, Clock::time_point now);
    // Inserts a pending entry (replacing an expired one), evicting expired or, when full, oldest ones.
    Entry& insert(const std::string& key, Clock::time_point now);
    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Slot {
        Entry entry;
        Clock::time_point inserted;
    };
    void evict(Clock::time_point now);

    Clock::duration lifetime_;
    std::size_t max_entries_;
    std::unordered_map<std::string, Slot> entries_;
    std::deque<std::pair<std::string, Clock::time_point>> order_;  // insertion order, for eviction
};

}  // namespace hubgate::coap
