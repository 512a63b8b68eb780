#include <malloc.h>

#include <iostream>

#include "config/config.hpp"
#include "gateway/app/app.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/app/logging.hpp"

namespace hubgate::app {

int cmd_run(const std::string& config_path) {
#if defined(__GLIBC__)
    // glibc gives each thread that allocates an arena of its own (up to 8 per core), each holding
    // freed memory of its own: with a dozen threads that is megabytes of idle RSS. The hot paths
    // reuse buffers, so two arenas cost no measurable contention (docs/BENCHMARKS.md, memory).
    mallopt(M_ARENA_MAX, 2);
#endif
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
