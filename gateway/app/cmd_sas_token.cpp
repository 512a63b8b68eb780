#include <ctime>
#include <iostream>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/model/sas_token.hpp"

namespace hubgate::app {

// Prints a SAS token for one of the config's [[device]] entries, for testing a device with
// mosquitto_pub or another generic client (the IoT Hub SDKs make their own from the key).
int cmd_sas_token(const std::string& config_path, const std::string& device_id, long ttl_seconds,
                  const std::string& host) {
    const auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    for (const auto& d : loaded.config->devices) {
        if (d.id != device_id) continue;
        auto token = make_sas_token(host + "/devices/" + d.id, d.key, static_cast<std::int64_t>(std::time(nullptr)) + ttl_seconds);
        if (!token) {
            std::cerr << "device " << device_id << ": " << token.error() << '\n';
            return kExitFailure;
        }
        std::cout << token.value() << '\n';
        return kExitOk;
    }
    std::cerr << config_path << ": no [[device]] with id '" << device_id << "'\n";
    return kExitFailure;
}

}  // namespace hubgate::app
