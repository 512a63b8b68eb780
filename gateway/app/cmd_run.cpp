#include <iostream>

#include "config/config.hpp"
#include "gateway/app/app.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/app/logging.hpp"

namespace hubgate::app {

int cmd_run(const std::string& config_path) {
    auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    setup_logging(loaded.config->gateway.log_level);
    App app(std::move(*loaded.config));
    return app.run();
}

}  // namespace hubgate::app
