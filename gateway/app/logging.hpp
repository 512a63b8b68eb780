// Logging setup for `hubgate run`: one line per event on stderr (journald adds its own timestamps
// under systemd, so the pattern stays short).
#pragma once

#include <string>

namespace hubgate::app {

// level: trace|debug|info|warn|error (validated by config).
void setup_logging(const std::string& level);

}  // namespace hubgate::app
