#include <ctime>
#include <iostream>
#include <optional>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/model/sas_token.hpp"
#include "store/device_registry.hpp"

namespace hubgate::app {
namespace {

// The key of a [[device]] in the config, else of a device in the registry (`hubgate devices add`).
std::optional<std::string> device_key(const config::Config& cfg, const std::string& device_id) {
    for (const auto& d : cfg.devices)
        if (d.id == device_id) return d.key;
    auto reg = store::DeviceRegistry::open(cfg.store.path, false);
    if (!reg) return std::nullopt;
    auto registered = (*reg)->registered();
    if (!registered) return std::nullopt;
    for (const auto& d : *registered)
        if (d.id == device_id) return d.key;
    return std::nullopt;
}

}  // namespace

// Prints a SAS token for a configured or registered device, for testing it with mosquitto_pub or
// another generic client (the IoT Hub SDKs make their own from the key).
int cmd_sas_token(const std::string& config_path, const std::string& device_id, long ttl_seconds,
                  const std::string& host) {
    const auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    const auto key = device_key(*loaded.config, device_id);
    if (!key) {
        std::cerr << config_path << ": no [[device]] with id '" << device_id << "', and none in the registry\n";
        return kExitFailure;
    }
    auto token = make_sas_token(host + "/devices/" + device_id, *key,
                                static_cast<std::int64_t>(std::time(nullptr)) + ttl_seconds);
    if (!token) {
        std::cerr << "device " << device_id << ": " << token.error() << '\n';
        return kExitFailure;
    }
    std::cout << token.value() << '\n';
    return kExitOk;
}

}  // namespace hubgate::app
