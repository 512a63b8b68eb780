// `hubgate devices show ID`: the device's twin from the store (docs/twins.md), read through a
// read-only connection of its own while the gateway runs. The document is the one a device's GET
// gets: {"desired":{...,"$version":n},"reported":{...,"$version":m}}.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/twins/twin_json.hpp"
#include "store/twins.hpp"

namespace hubgate::app {

int cmd_devices_show(const std::string& config_path, const std::string& id) {
    auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    store::StoredTwin twin;  // no store or no twin yet: empty documents at version 1
    std::error_code ec;
    if (std::filesystem::exists(loaded.config->store.path, ec)) {
        auto read = store::read_twin(loaded.config->store.path, id);
        if (!read) {
            std::cerr << read.error() << '\n';
            return kExitFailure;
        }
        if (*read) twin = std::move(**read);
    }
    const auto doc = nlohmann::json::parse(
        twins::twin_document(twin.desired, twin.desired_version, twin.reported, twin.reported_version));
    std::cout << "device " << id << "\n" << doc.dump(2) << '\n';
    return kExitOk;
}

}  // namespace hubgate::app
