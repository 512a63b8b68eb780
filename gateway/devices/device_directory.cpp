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

bool DeviceDirectory::record_seen(std::string_view id) {
    std::function<void(const std::string&)> listener;
    const std::string key(id);
    {
        std::unique_lock lock(mu_);
        if (static_.count(key) || seen_.count(key)) return false;
        seen_.emplace(key, DeviceRecord{key, {}, {}});
        listener = seen_listener_;
    }
    if (listener) listener(key);
    return true;
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
