// The device registry: devices added with `hubgate devices add` (id, SAS key, module), kept in the
// store's database beside the ids seen on auth = "none" listeners. The CLI opens it in its own
// process; the gateway reads it at start and on SIGHUP. WAL lets both work while the gateway's
// store writes. One connection per DeviceRegistry, used by the thread that opened it, briefly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/model/result.hpp"
#include "store/inbox.hpp"

namespace hubgate::store {

struct RegisteredDevice {
    std::string id;
    std::string key;        // base64 SAS key
    std::string module_id;  // empty = the listener's module_id
    std::int64_t added_ms = 0;
    std::string children;   // a bridge's glob of the device ids it may speak for; empty = none
    std::string enrollment; // the enrollment group it paired through; empty = added by the CLI
};

class DeviceRegistry {
public:
    // Opens the store database at `path`, creating and migrating it when `create` is set (the file
    // may not exist yet when a device is added before the gateway first ran). Without `create`, a
    // missing file is an error.
    static Result<std::unique_ptr<DeviceRegistry>> open(const std::string& path, bool create);
    ~DeviceRegistry();
    DeviceRegistry(const DeviceRegistry&) = delete;
    DeviceRegistry& operator=(const DeviceRegistry&) = delete;

    // Adds a device; false when the id is registered already (the stored one is kept).
    Result<bool> add(const RegisteredDevice& device);
    // Removes a registered device and forgets the id as a seen one; false when it was neither.
    Result<bool> remove(std::string_view id);
    Result<std::vector<RegisteredDevice>> registered();  // ordered by id
    Result<std::vector<std::string>> seen();             // ids seen on auth = "none" listeners, by id
    Result<std::vector<StoredRoute>> routes();           // translated devices' last routes, by id

private:
    struct Impl;
    explicit DeviceRegistry(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::store
