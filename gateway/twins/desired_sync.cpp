// TwinService's part in the GET of the gateway's own twin on every upstream connect (docs/twins.md):
// each local device's desired properties become what the hub's twin says, applied and notified as
// desired patches (so a connected device sees the difference as a patch with the new $version).
#include <future>
#include <memory>

#include "gateway/twins/twin_service.hpp"

namespace hubgate::twins {

std::size_t TwinService::apply_desired_changes(const std::vector<std::pair<std::string, std::string>>& changes) {
    // Runs on Paho's thread like apply_gateway_desired: a desired patch of the gateway's twin that
    // arrives after the GET's answer is applied after these changes, never under them.
    std::vector<std::future<void>> pending;
    pending.reserve(changes.size());
    for (const auto& [id, patch] : changes) {
        auto done = std::make_shared<std::promise<void>>();
        pending.push_back(done->get_future());
        update_desired(id, patch, [done] { done->set_value(); });
    }
    for (auto& f : pending) f.wait();
    return changes.size();
}

}  // namespace hubgate::twins
