// hubgate's version, shown by --version, the startup log line and hubgate_build_info.
#pragma once

namespace hubgate::app {
inline constexpr const char* kVersion = "0.1.0";
}
