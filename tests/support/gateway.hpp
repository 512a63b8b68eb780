// Starting a real `hubgate run` for integration tests: writes a config into a TempDir, starts the
// binary on free ports, waits until it serves /healthz. Reused by every integration test.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

// A config that validates and needs no network peer: mqtt upstream profile pointing at a closed
// port, no listeners, store and metrics under `dir`. `extra` is appended (more tables);
// `store_extra` goes inside the [store] table (e.g. "max_messages = 5\non_full = \"reject-new\"\n");
// the store commits at once (commit_window_ms = 0) unless `store_extra` sets commit_window_ms.
// `upstream_url` replaces the closed port (a test's Mosquitto::url(); a TOML list "[...]" is written as
// it is); `upstream_extra` goes inside
// the [upstream] table (e.g. "batch = false\n").
std::string minimal_config(const TempDir& dir, std::uint16_t metrics_port, const std::string& extra = {},
                           const std::string& store_extra = {}, const std::string& upstream_url = "tcp://127.0.0.1:9",
                           const std::string& upstream_extra = {});

// TOML for one device-facing listener and one static device, to append to minimal_config().
std::string listener_toml(const std::string& protocol, std::uint16_t port, const std::string& auth = "sas",
                          const std::string& module_id = {}, const std::string& extra = {});
std::string device_toml(const std::string& id, const std::string& key, const std::string& module_id = {});

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false): waiting for
// an outcome without fixed sleeps.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

class Gateway {
public:
    // Writes `config_text` to dir/hubgate.toml and starts `hubgate run` on it.
    // `launcher` is prepended to the command (e.g. {"prlimit", "--nofile=64"}).
    Gateway(const TempDir& dir, std::string config_text, std::uint16_t metrics_port,
            std::vector<std::string> launcher = {});
    ~Gateway();

    // True once GET /healthz answers 200 (or false after `timeout`).
    bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    Process& process() { return *process_; }
    // SIGKILL and start again on the same config and data (durability tests).
    void kill_and_restart();
    // SIGKILL and wait, leaving the store as the crash left it; start() runs it again.
    void kill();
    void start();
    // SIGTERM and wait for a clean exit; returns the exit code (-1 if it did not exit).
    int stop();
    const std::string& config_path() const noexcept { return config_path_; }
    std::uint16_t metrics_port() const noexcept { return metrics_port_; }
    // Value of one sample from /metrics ("name" or "name{labels}"); NaN if absent or unreachable.
    double metric(const std::string& series);
    // Resident memory of the gateway process (VmRSS from /proc/<pid>/status) in KiB; -1 if unknown.
    long rss_kib();

private:
    std::string config_path_;
    std::uint16_t metrics_port_;
    std::unique_ptr<Process> process_;
    std::vector<std::string> argv_;
};

}  // namespace hubgate::test
