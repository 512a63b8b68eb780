// The `hubgate` subcommands. main.cpp parses the command line (CLI11) and calls one of these;
// each returns the process exit code.
#pragma once

#include <string>

namespace hubgate::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitNotRunning = 3;

int cmd_run(const std::string& config_path);
int cmd_check_config(const std::string& config_path);
int cmd_status(const std::string& config_path);
int cmd_devices_add(const std::string& config_path, const std::string& id, const std::string& module_id,
                    const std::string& host, const std::string& children = {}, bool qr = false);
int cmd_devices_list(const std::string& config_path);
int cmd_devices_remove(const std::string& config_path, const std::string& id);
// Prints the device's twin as the SDKs' GET gets it (docs/twins.md).
int cmd_devices_show(const std::string& config_path, const std::string& id);
// Pairing (cmd_pair.cpp): act on the running gateway through its control socket (exit 3 without one).
int cmd_pair_open(const std::string& config_path, long seconds);  // 0: [pairing] window_seconds
int cmd_pair_close(const std::string& config_path);
int cmd_pair_status(const std::string& config_path);
int cmd_devices_pending(const std::string& config_path);
int cmd_devices_approve(const std::string& config_path, const std::string& id);
int cmd_devices_key(const std::string& config_path, const std::string& id, const std::string& enrollment);
int cmd_rules_test(const std::string& config_path, const std::string& topic, const std::string& path,
                   const std::string& payload_file, int content_format, const std::string& device,
                   const std::string& client, const std::string& listener);
int cmd_sas_token(const std::string& config_path, const std::string& device_id, long ttl_seconds,
                  const std::string& host);

}  // namespace hubgate::app
