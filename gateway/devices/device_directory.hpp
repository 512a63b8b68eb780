// Which devices the gateway knows and their keys: devices with keys ([[device]] entries from config
// and the registry of `hubgate devices add`, replaced on SIGHUP) plus ids first seen on an
// `auth = "none"` listener (at most set_seen_limit() of them). Read by the adapters' auth on every
// CONNECT and by the C2D relay; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hubgate {

struct DeviceRecord {
    DeviceRecord() = default;
    DeviceRecord(std::string id_, std::string key_, std::string module_id_, std::string children_ = {})
        : id(std::move(id_)), key(std::move(key_)), module_id(std::move(module_id_)), children(std::move(children_)) {}

    std::string id;
    std::string key;        // base64 SAS key; empty for devices seen on an auth = "none" listener
    std::string module_id;  // configured module, empty = none
    std::string children;   // a bridge's glob of the device ids it may speak for; empty = none
};

// Shell-style glob: `*` any run (crossing `/`), `?` one character; case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

class DeviceDirectory {
public:
    std::optional<DeviceRecord> find(std::string_view id) const;
    bool known(std::string_view id) const;
    // Whether device `bridge` may send messages as `device`: its `children` glob matches it.
    bool may_speak_for(std::string_view bridge, std::string_view device) const;
    // Replaces the devices with keys (config and registry, at start and on SIGHUP). Devices seen on
    // auth = "none" listeners stay.
    void replace_static(std::vector<DeviceRecord> devices);
    // Adds one device with a key (pairing registered it; the registry has it already, so the next
    // replace_static() keeps it). An id that has a key already keeps it; false then.
    bool add_keyed(DeviceRecord device);
    enum class Seen { known, added, full };
    // Records an id that named itself on an auth = "none" listener. `added` the first time (and then
    // the seen listener is told, which persists it so C2D reaches it after a restart); `full` when
    // the id is new but the seen-device limit is reached: the caller refuses the device.
    Seen record_seen(std::string_view id);
    // Replaces the seen ids (a reload: `hubgate devices remove` may have forgotten some); the
    // listener is not told.
    void replace_seen(const std::vector<std::string>& ids);
    void set_seen_limit(std::size_t limit);
    void set_seen_listener(std::function<void(const std::string& id)> listener);
    std::size_t size() const;

private:
    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, DeviceRecord> static_;
    std::unordered_map<std::string, DeviceRecord> seen_;
    std::function<void(const std::string&)> seen_listener_;
    std::size_t seen_limit_ = 10000;
};

}  // namespace hubgate
