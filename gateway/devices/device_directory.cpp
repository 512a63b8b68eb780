#include "gateway/devices/device_directory.hpp"

#include <mutex>

namespace hubgate {

std::optional<DeviceRecord> DeviceDirectory::find(std::string_view id) const {
    std::shared_lock lock(mu_);
    const std::string key(id);
    if (auto it = static_.find(key); it != static_.end()) return it->second;
    if (auto it = seen_.find(key); it != seen_.end()) return it->second;
    return std::nullopt;
}

bool DeviceDirectory::known(std::string_view id) const { return find(id).has_value(); }

void DeviceDirectory::replace_static(std::vector<DeviceRecord> devices) {
    std::unordered_map<std::string, DeviceRecord> next;
    for (auto& d : devices) {
        std::string id = d.id;
        next.emplace(std::move(id), std::move(d));
    }
    std::unique_lock lock(mu_);
    static_ = std::move(next);
}

bool DeviceDirectory::add_keyed(DeviceRecord device) {
    std::unique_lock lock(mu_);
    if (auto it = static_.find(device.id); it != static_.end() && !it->second.key.empty()) return false;
    seen_.erase(device.id);  // a seen id that paired is a keyed device now
    std::string id = device.id;
    static_.insert_or_assign(std::move(id), std::move(device));
    return true;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    // Iterative matcher with one backtrack point (the last `*`): linear in practice, no recursion.
    std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

bool DeviceDirectory::may_speak_for(std::string_view bridge, std::string_view device) const {
    std::shared_lock lock(mu_);
    auto it = static_.find(std::string(bridge));
    return it != static_.end() && !it->second.children.empty() && glob_match(it->second.children, device);
}

DeviceDirectory::Seen DeviceDirectory::record_seen(std::string_view id) {
    const std::string key(id);
    {
        // Every CoAP request on an open listener asks: the common answer takes the shared lock.
        std::shared_lock lock(mu_);
        if (static_.count(key) || seen_.count(key)) return Seen::known;
    }
    std::function<void(const std::string&)> listener;
    {
        std::unique_lock lock(mu_);
        if (static_.count(key) || seen_.count(key)) return Seen::known;
        if (seen_.size() >= seen_limit_) return Seen::full;
        seen_.emplace(key, DeviceRecord{key, {}, {}, {}});
        listener = seen_listener_;
    }
    if (listener) listener(key);
    return Seen::added;
}

void DeviceDirectory::replace_seen(const std::vector<std::string>& ids) {
    std::unordered_map<std::string, DeviceRecord> next;
    for (const auto& id : ids) next.emplace(id, DeviceRecord{id, {}, {}, {}});
    std::unique_lock lock(mu_);
    seen_ = std::move(next);
}

void DeviceDirectory::set_seen_limit(std::size_t limit) {
    std::unique_lock lock(mu_);
    seen_limit_ = limit;
}

void DeviceDirectory::set_seen_listener(std::function<void(const std::string& id)> listener) {
    std::unique_lock lock(mu_);
    seen_listener_ = std::move(listener);
}

std::size_t DeviceDirectory::size() const {
    std::shared_lock lock(mu_);
    return static_.size() + seen_.size();
}

}  // namespace hubgate
