#include <iostream>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"

namespace hubgate::app {

int cmd_check_config(const std::string& config_path) {
    const auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    std::cout << config_path << ": ok: " << loaded.config->summary() << '\n';
    return kExitOk;
}

}  // namespace hubgate::app
