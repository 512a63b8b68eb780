// hubgate's entry point: the command line contract from DESIGN.md ("Contracts other tools rely on").
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <climits>

#include "gateway/app/commands.hpp"
#include "gateway/app/version.hpp"

namespace {

// This machine's host name: the default HostName of a new device's connection string.
std::string local_host_name() {
    char name[HOST_NAME_MAX + 1] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "hubgate";
    return name;
}

}  // namespace

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

    auto* token = cli.add_subcommand("sas-token", "print a SAS token for a configured or registered device (for testing with generic MQTT clients)");
    add_config(token);
    std::string device_id;
    long ttl = 3600;
    std::string host = "hubgate";
    token->add_option("device", device_id, "device id")->required();
    token->add_option("--ttl", ttl, "seconds until the token expires")->capture_default_str();
    token->add_option("--host", host, "host part of the token's resource {host}/devices/{id}")->capture_default_str();

    auto* devices = cli.add_subcommand("devices", "the device registry: devices added here connect with SAS keys (read on start and SIGHUP)");
    devices->require_subcommand(1);
    auto* dev_add = devices->add_subcommand("add", "register a device with a new key; prints its connection string");
    add_config(dev_add);
    std::string module_id;
    std::string hostname = local_host_name();
    dev_add->add_option("device", device_id, "device id")->required();
    dev_add->add_option("--module", module_id, "module id for its messages (default: the listener's module_id)");
    std::string children;
    dev_add->add_option("--children", children,
                        "a bridge (Zigbee2MQTT, LoRa forwarder) may send as the device ids this glob matches (* and ?)");
    dev_add->add_option("--host", hostname, "HostName in the connection string: how devices reach this gateway")
        ->capture_default_str();
    bool qr = false;
    dev_add->add_flag("--qr", qr, "also draw the connection string as a QR code in the terminal (phone-based setup)");
    auto* dev_list = devices->add_subcommand("list", "list devices: from the config, the registry, and ids seen on auth = \"none\" listeners");
    add_config(dev_list);
    auto* dev_remove = devices->add_subcommand("remove", "remove a registered or seen device");
    add_config(dev_remove);
    dev_remove->add_option("device", device_id, "device id")->required();
    auto* dev_show = devices->add_subcommand("show", "print a device's twin (desired and reported properties, versions)");
    add_config(dev_show);
    dev_show->add_option("device", device_id, "device id")->required();

    auto* dev_pending = devices->add_subcommand(
        "pending", "devices refused while the pairing window was closed: ID ENROLLMENT ADDRESS FIRST LAST COUNT");
    add_config(dev_pending);
    auto* dev_approve = devices->add_subcommand("approve", "register a pending device now (running gateway)");
    add_config(dev_approve);
    dev_approve->add_option("device", device_id, "device id")->required();
    auto* dev_key = devices->add_subcommand("key", "print the key an enrollment group derives for a device (to flash it)");
    add_config(dev_key);
    std::string enrollment;
    dev_key->add_option("device", device_id, "device id")->required();
    dev_key->add_option("--enrollment", enrollment, "[[enrollment]] id")->required();

    auto* pair = cli.add_subcommand("pair", "the pairing window of the running gateway (docs/pairing.md)");
    pair->require_subcommand(1);
    auto* pair_open = pair->add_subcommand("open", "open the window: enrolled devices register on first contact");
    add_config(pair_open);
    long pair_for = 0;
    pair_open->add_option("--for", pair_for, "seconds (default: [pairing] window_seconds)")->check(CLI::Range(1, 86400));
    auto* pair_close = pair->add_subcommand("close", "close the window now");
    add_config(pair_close);
    auto* pair_status = pair->add_subcommand("status", "print open or closed, then the time left");
    add_config(pair_status);

    auto* rules = cli.add_subcommand("rules", "translation rules: what a device's own payloads become");
    rules->require_subcommand(1);
    auto* rules_test = rules->add_subcommand(
        "test", "print the hub message a payload would become: rule, device, module, properties, body");
    add_config(rules_test);
    std::string rt_topic, rt_path, rt_payload, rt_client, rt_listener;
    int rt_content_format = -1;
    rules_test->add_option("--topic", rt_topic, "MQTT topic the device publishes on");
    rules_test->add_option("--path", rt_path, "CoAP path the device posts to (a ?query gives properties)")
        ->excludes("--topic");
    rules_test->add_option("--payload-file", rt_payload, "the payload's bytes (- reads stdin)")->required();
    rules_test->add_option("--content-format", rt_content_format, "Content-Format (50 JSON, 60 CBOR, 110/112 SenML)")
        ->check(CLI::Range(0, 65535));
    rules_test->add_option("--device", device_id, "the authenticated device id (default: none, as on an open listener)");
    rules_test->add_option("--client", rt_client, "MQTT client id");
    rules_test->add_option("--listener", rt_listener, "listener name (default: the first of the topic's/path's protocol)");

    CLI11_PARSE(cli, argc, argv);

    if (run->parsed()) return cmd_run(config_path);
    if (check->parsed()) return cmd_check_config(config_path);
    if (status->parsed()) return cmd_status(config_path);
    if (token->parsed()) return cmd_sas_token(config_path, device_id, ttl, host);
    if (dev_add->parsed()) return cmd_devices_add(config_path, device_id, module_id, hostname, children, qr);
    if (dev_list->parsed()) return cmd_devices_list(config_path);
    if (dev_remove->parsed()) return cmd_devices_remove(config_path, device_id);
    if (dev_show->parsed()) return cmd_devices_show(config_path, device_id);
    if (dev_pending->parsed()) return cmd_devices_pending(config_path);
    if (dev_approve->parsed()) return cmd_devices_approve(config_path, device_id);
    if (dev_key->parsed()) return cmd_devices_key(config_path, device_id, enrollment);
    if (pair_open->parsed()) return cmd_pair_open(config_path, pair_for);
    if (pair_close->parsed()) return cmd_pair_close(config_path);
    if (pair_status->parsed()) return cmd_pair_status(config_path);
    if (rules_test->parsed())
        return cmd_rules_test(config_path, rt_topic, rt_path, rt_payload, rt_content_format, device_id, rt_client,
                              rt_listener);
    return kExitFailure;
}
