// Starting a real `hubgate run` for integration tests: writes a config into a TempDir, starts the
// binary on free ports, waits until it serves /healthz. Reused by every integration test.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

// A config that validates and needs no network peer: mqtt upstream profile pointing at a closed
// port, no listeners, store and metrics under `dir`. `extra` is appended (more tables).
std::string minimal_config(const TempDir& dir, std::uint16_t metrics_port, const std::string& extra = {});

class Gateway {
public:
    // Writes `config_text` to dir/hubgate.toml and starts `hubgate run` on it.
    Gateway(const TempDir& dir, std::string config_text, std::uint16_t metrics_port);
    ~Gateway();

    // True once GET /healthz answers 200 (or false after `timeout`).
    bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    Process& process() { return *process_; }
    const std::string& config_path() const noexcept { return config_path_; }
    std::uint16_t metrics_port() const noexcept { return metrics_port_; }
    // Value of one sample from /metrics ("name" or "name{labels}"); NaN if absent or unreachable.
    double metric(const std::string& series);

private:
    std::string config_path_;
    std::uint16_t metrics_port_;
    std::unique_ptr<Process> process_;
};

}  // namespace hubgate::test
