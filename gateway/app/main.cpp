// hubgate's entry point: the command line contract from DESIGN.md ("Contracts other tools rely on").
#include <CLI/CLI.hpp>

#include "gateway/app/commands.hpp"
#include "gateway/app/version.hpp"

int main(int argc, char** argv) {
    using namespace hubgate::app;
    CLI::App cli{"hubgate: an edge gateway relaying MQTT and CoAP devices to an IoT hub, store-and-forward"};
    cli.set_version_flag("--version", std::string(kVersion));
    cli.require_subcommand(1);

    std::string config_path = "/etc/hubgate/hubgate.toml";
    auto add_config = [&](CLI::App* sub) {
        sub->add_option("-c,--config", config_path, "config file (TOML)")->capture_default_str();
    };

    auto* run = cli.add_subcommand("run", "run the gateway in the foreground (logs to stderr; SIGTERM/SIGINT stop it)");
    add_config(run);
    auto* check = cli.add_subcommand("check-config", "validate the config file: exit 0, or exit 2 with FILE:LINE: what");
    add_config(check);
    auto* status = cli.add_subcommand("status", "ask the running gateway for its state (via its metrics endpoint)");
    add_config(status);

    auto* token = cli.add_subcommand("sas-token", "print a SAS token for a configured [[device]] (for testing with generic MQTT clients)");
    add_config(token);
    std::string device_id;
    long ttl = 3600;
    std::string host = "hubgate";
    token->add_option("device", device_id, "device id")->required();
    token->add_option("--ttl", ttl, "seconds until the token expires")->capture_default_str();
    token->add_option("--host", host, "host part of the token's resource {host}/devices/{id}")->capture_default_str();

    CLI11_PARSE(cli, argc, argv);

    if (run->parsed()) return cmd_run(config_path);
    if (check->parsed()) return cmd_check_config(config_path);
    if (status->parsed()) return cmd_status(config_path);
    if (token->parsed()) return cmd_sas_token(config_path, device_id, ttl, host);
    return kExitFailure;
}
