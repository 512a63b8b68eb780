#include "tests/support/gateway.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace hubgate::test {

std::string minimal_config(const TempDir& dir, std::uint16_t metrics_port, const std::string& extra) {
    std::ostringstream c;
    c << "[gateway]\nid = \"gw-test\"\ndata_dir = \"" << dir.path() << "\"\n\n"
      << "[upstream]\nprofile = \"mqtt\"\nurl = \"tcp://127.0.0.1:9\"\n\n"
      << "[store]\npath = \"hubgate.db\"\ndurability = \"process\"\n\n"
      << "[metrics]\nbind = \"127.0.0.1:" << metrics_port << "\"\n\n"
      << extra;
    return c.str();
}

Gateway::Gateway(const TempDir& dir, std::string config_text, std::uint16_t metrics_port)
    : config_path_(dir.write("hubgate.toml", config_text)), metrics_port_(metrics_port) {
    process_ = std::make_unique<Process>(std::vector<std::string>{HUBGATE_BINARY, "run", "-c", config_path_});
}

Gateway::~Gateway() = default;

bool Gateway::wait_ready(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!process_->running()) return false;
        if (http_get(metrics_port_, "/healthz").status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

double Gateway::metric(const std::string& series) {
    const auto r = http_get(metrics_port_, "/metrics");
    if (r.status != 200) return std::nan("");
    std::istringstream in(r.body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(series + " ", 0) == 0) return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
    return std::nan("");
}

}  // namespace hubgate::test
