// Devices that proved they hold a key derived from an enrollment group while the pairing window was
// closed: `hubgate devices pending` lists them, `hubgate devices approve` registers one. In memory
// in the running gateway (docs/pairing.md says why): at most `limit` entries (the least recently
// seen is dropped for a new one), each forgotten `ttl` after its last attempt. Pure; io thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hubgate::pairing {

struct PendingDevice {
    std::string id;
    std::string enrollment;
    std::string address;  // IP of the last attempt
    std::chrono::system_clock::time_point first;
    std::chrono::system_clock::time_point last;
    std::uint64_t count = 0;
};

class PendingTable {
public:
    using Clock = std::chrono::system_clock;
    explicit PendingTable(std::size_t limit = 1000, std::chrono::seconds ttl = std::chrono::hours(24));

    // One refused attempt. A full table drops its least recently seen entry for a new id.
    void record(std::string_view id, std::string_view enrollment, std::string_view address, Clock::time_point now);
    // Removes and returns the entry (approve), if present and not expired.
    std::optional<PendingDevice> take(std::string_view id, Clock::time_point now);
    void remove(std::string_view id);
    bool contains(std::string_view id) const { return entries_.count(std::string(id)) != 0; }
    // Live entries ordered by first attempt (expired ones are dropped first).
    std::vector<PendingDevice> list(Clock::time_point now);
    std::size_t size() const noexcept { return entries_.size(); }
    std::uint64_t evicted() const noexcept { return evicted_; }

private:
    void expire(Clock::time_point now);
    std::size_t limit_;
    std::chrono::seconds ttl_;
    std::unordered_map<std::string, PendingDevice> entries_;
    std::uint64_t evicted_ = 0;
};

}  // namespace hubgate::pairing
