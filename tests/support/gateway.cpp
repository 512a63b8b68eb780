#include "tests/support/gateway.hpp"

#include <csignal>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace hubgate::test {

std::string minimal_config(const TempDir& dir, std::uint16_t metrics_port, const std::string& extra,
                           const std::string& store_extra, const std::string& upstream_url,
                           const std::string& upstream_extra) {
    std::ostringstream c;
    c << "[gateway]\nid = \"gw-test\"\ndata_dir = \"" << dir.path() << "\"\n\n"
      << "[upstream]\nprofile = \"mqtt\"\nurl = "
      << (upstream_url.rfind('[', 0) == 0 ? upstream_url : "\"" + upstream_url + "\"") << "\n" << upstream_extra << "\n"
      << "[store]\npath = \"hubgate.db\"\ndurability = \"process\"\n"
      // Test devices mostly publish one message at a time, which the commit window would slow to
      // one per window: tests commit at once unless they ask for a window (mqtt_durability_test).
      << (store_extra.find("commit_window_ms") == std::string::npos ? "commit_window_ms = 0\n" : "") << store_extra
      << "\n"
      << "[metrics]\nbind = \"127.0.0.1:" << metrics_port << "\"\n\n"
      << extra;
    return c.str();
}

Gateway::Gateway(const TempDir& dir, std::string config_text, std::uint16_t metrics_port,
                 std::vector<std::string> launcher)
    : config_path_(dir.write("hubgate.toml", config_text)), metrics_port_(metrics_port), argv_(std::move(launcher)) {
    argv_.insert(argv_.end(), {HUBGATE_BINARY, "run", "-c", config_path_});
    process_ = std::make_unique<Process>(argv_);
}

Gateway::~Gateway() = default;

std::string listener_toml(const std::string& protocol, std::uint16_t port, const std::string& auth,
                          const std::string& module_id, const std::string& extra) {
    std::ostringstream c;
    c << "[[listener]]\nprotocol = \"" << protocol << "\"\nbind = \"127.0.0.1:" << port << "\"\nauth = \"" << auth
      << "\"\n";
    if (!module_id.empty()) c << "module_id = \"" << module_id << "\"\n";
    c << extra << "\n";
    return c.str();
}

std::string device_toml(const std::string& id, const std::string& key, const std::string& module_id) {
    std::ostringstream c;
    c << "[[device]]\nid = \"" << id << "\"\nkey = \"" << key << "\"\n";
    if (!module_id.empty()) c << "module_id = \"" << module_id << "\"\n";
    c << "\n";
    return c.str();
}

void Gateway::kill_and_restart() {
    kill();
    start();
}

void Gateway::kill() {
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(10));
}

void Gateway::start() { process_ = std::make_unique<Process>(argv_); }

long Gateway::rss_kib() {
    std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int Gateway::stop() {
    process_->signal(SIGTERM);
    return process_->wait(std::chrono::seconds(20)).value_or(-1);
}

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
