// `hubgate devices add|list|remove` against a real `hubgate run`: a registered device connects with
// the key from its printed connection string (at start, and after SIGHUP when added while running),
// a removed one is refused after SIGHUP, and every refusal of the CLI says why.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <sstream>
#include <string>

#include "gateway/model/connection_string.hpp"
#include "gateway/model/crypto.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// A config with one SAS listener (module "edge"), one auth = "none" listener and one [[device]],
// written before the gateway starts so the CLI can be run on it first.
struct Rig {
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t port = free_tcp_port();
    std::uint16_t open_port = free_tcp_port();
    std::string config_text = minimal_config(dir, metrics_port,
                                             listener_toml("mqtt", port, "sas", "edge") +
                                                 listener_toml("mqtt", open_port, "none", "open") +
                                                 device_toml("sensor-1", kKey));
    std::string config = dir.write("hubgate.toml", config_text);

    Rig() = default;
    // `gateway_keys` go into the [gateway] table.
    explicit Rig(const std::string& gateway_keys) {
        const std::string anchor = "[gateway]\n";
        config_text.insert(config_text.find(anchor) + anchor.size(), gateway_keys);
        config = dir.write("hubgate.toml", config_text);
    }

    RunResult cli(std::vector<std::string> args) const {
        std::vector<std::string> argv{HUBGATE_BINARY, "devices"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"-c", config});
        return run(argv);
    }

    // `devices add`, parsing the connection string it prints.
    ConnectionString add(std::vector<std::string> args) const {
        args.insert(args.begin(), "add");
        const auto r = cli(args);
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        std::istringstream lines(r.output);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("HostName=", 0) == 0) {
                auto cs = parse_connection_string(line);
                REQUIRE_MESSAGE(cs.ok(), line);
                return cs.value();
            }
        FAIL("no connection string in the output");
        return {};
    }

    RunResult publish(const ConnectionString& cs, const std::string& body) const {
        return mosquitto_pub(port, cs.device_id, device_token(cs.device_id, cs.shared_access_key),
                             {"-q", "1", "-m", body, "-t", "devices/" + cs.device_id + "/messages/events/"});
    }
};

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// SIGHUP, then wait for the gateway to log its `reloaded` line number `nth`.
void reload(Gateway& gw, std::size_t nth) {
    gw.process().signal(SIGHUP);
    REQUIRE_MESSAGE(eventually([&] { return count(gw.process().output(), "reloaded ") >= nth; }, 10s),
                    gw.process().output());
}

}  // namespace

TEST_CASE("a device added with the CLI connects with its connection string's key and is refused once removed") {
    Rig rig;
    const auto pump = rig.add({"pump-7", "--module", "pumps", "--host", "gw.test"});
    CHECK(pump.host_name == "gw.test");
    CHECK(pump.device_id == "pump-7");
    CHECK(base64_decode(pump.shared_access_key).value().size() == 32);

    Gateway gw(rig.dir, rig.config_text, rig.metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    // Registered before the start: known at once.
    const auto first = rig.publish(pump, "from pump");
    CHECK_MESSAGE(first.exit_code == 0, first.output);

    // Added while running: known after a reload.
    const auto lamp = rig.add({"lamp-1"});
    CHECK(lamp.shared_access_key != pump.shared_access_key);
    reload(gw, 1);
    const auto second = rig.publish(lamp, "from lamp");
    CHECK_MESSAGE(second.exit_code == 0, second.output);

    // Removed while running: refused after a reload (CONNACK 5, not authorised).
    const auto removed = rig.cli({"remove", "pump-7"});
    CHECK_MESSAGE(removed.exit_code == 0, removed.output);
    reload(gw, 2);
    const auto third = rig.publish(pump, "after removal");
    CHECK(third.exit_code != 0);
    CHECK_MESSAGE(third.output.find("not authori") != std::string::npos, third.output);

    REQUIRE_MESSAGE(gw.stop() == 0, gw.process().output());
    const auto stored = stored_messages(rig.dir.file("hubgate.db"));
    REQUIRE(stored.size() == 2);
    CHECK(stored[0].device_id == "pump-7");
    CHECK(stored[0].module_id == "pumps");  // the module given to `devices add`
    CHECK(stored[0].body == "from pump");
    CHECK(stored[1].device_id == "lamp-1");
    CHECK(stored[1].module_id == "edge");  // none given: the listener's
    CHECK(stored[1].body == "from lamp");
}

TEST_CASE("a reload cuts off a connected device that was removed or got a new key, and no other") {
    Rig rig;
    const auto pump = rig.add({"pump-7"});
    const auto lamp = rig.add({"lamp-1"});
    Gateway gw(rig.dir, rig.config_text, rig.metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    const auto uri = "tcp://127.0.0.1:" + std::to_string(rig.port);
    PahoDevice pump_dev(uri, "pump-7", device_token("pump-7", pump.shared_access_key));
    PahoDevice lamp_dev(uri, "lamp-1", device_token("lamp-1", lamp.shared_access_key));
    PahoDevice sensor_dev(uri, "sensor-1", device_token("sensor-1", kKey));
    REQUIRE(pump_dev.connect() == 0);
    REQUIRE(lamp_dev.connect() == 0);
    REQUIRE(sensor_dev.connect() == 0);

    // Removing pump-7 and re-adding lamp-1 (a new key) in the registry, then reloading.
    REQUIRE(rig.cli({"remove", "pump-7"}).exit_code == 0);
    REQUIRE(rig.cli({"remove", "lamp-1"}).exit_code == 0);
    const auto lamp2 = rig.add({"lamp-1"});
    reload(gw, 1);
    CHECK(eventually([&] { return !pump_dev.connected() && !lamp_dev.connected(); }, 10s));
    CHECK(gw.metric("hubgate_mqtt_revoked_total") == 2);
    // The config device was not touched, and the lamp connects again with its new key.
    CHECK(sensor_dev.connected());
    CHECK(sensor_dev.publish("devices/sensor-1/messages/events/", "still here", 1));
    PahoDevice lamp_again(uri, "lamp-1", device_token("lamp-1", lamp2.shared_access_key));
    CHECK(lamp_again.connect() == 0);
    CHECK(lamp_again.publish("devices/lamp-1/messages/events/", "new key", 1));
}

TEST_CASE("devices list shows config, registered and seen devices while the gateway runs") {
    Rig rig;
    rig.add({"pump-7", "--module", "pumps"});
    Gateway gw(rig.dir, rig.config_text, rig.metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    const auto open = mosquitto_pub(rig.open_port, "open-3", std::nullopt,
                                    {"-q", "1", "-m", "x", "-t", "devices/open-3/messages/events/"});
    REQUIRE_MESSAGE(open.exit_code == 0, open.output);

    // The seen id is persisted by the gateway's store writer; list reads it from its own connection.
    RunResult listed;
    CHECK(eventually([&] {
        listed = rig.cli({"list"});
        return listed.output.find("open-3") != std::string::npos;
    }, 10s));
    INFO(listed.output);
    CHECK(listed.exit_code == 0);
    CHECK(listed.output.find("sensor-1  config    -") != std::string::npos);
    CHECK(listed.output.find("pump-7    registry  pumps") != std::string::npos);
    CHECK(listed.output.find("open-3    seen      -") != std::string::npos);

    // A seen device can be forgotten (until it names itself again).
    const auto removed = rig.cli({"remove", "open-3"});
    CHECK_MESSAGE(removed.exit_code == 0, removed.output);
    CHECK(rig.cli({"list"}).output.find("open-3") == std::string::npos);
}

TEST_CASE("an open listener keeps at most max_seen_devices ids, also after a restart, and remove + reload makes room") {
    Rig rig("max_seen_devices = 1\n");
    Gateway gw(rig.dir, rig.config_text, rig.metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    auto open = [&](const std::string& id) {
        return mosquitto_pub(rig.open_port, id, std::nullopt,
                             {"-q", "1", "-m", "from " + id, "-t", "devices/" + id + "/messages/events/"});
    };
    CHECK(open("open-1").exit_code == 0);
    const auto refused = open("open-2");
    CHECK(refused.exit_code != 0);
    CHECK_MESSAGE(refused.output.find("not authori") != std::string::npos, refused.output);
    CHECK(gw.metric("hubgate_mqtt_connects_refused_total{reason=\"seen_devices_full\"}") == 1);
    CHECK(gw.process().output().find("max_seen_devices") != std::string::npos);  // the log says why

    // The seen id is persisted: after a SIGKILL the gateway still holds it, and still no room.
    gw.kill_and_restart();
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    CHECK(open("open-1").exit_code == 0);
    CHECK(open("open-2").exit_code != 0);

    // Forgetting open-1 and reloading makes room for open-2.
    const auto removed = rig.cli({"remove", "open-1"});
    CHECK_MESSAGE(removed.exit_code == 0, removed.output);
    reload(gw, 1);
    CHECK(open("open-2").exit_code == 0);
    CHECK(open("open-1").exit_code != 0);

    REQUIRE_MESSAGE(gw.stop() == 0, gw.process().output());
    std::vector<std::string> from;
    for (const auto& m : stored_messages(rig.dir.file("hubgate.db"))) from.push_back(m.device_id);
    CHECK(from == std::vector<std::string>{"open-1", "open-1", "open-2"});
}

TEST_CASE("sas-token signs for a registered device, and a config entry for the same id wins over the registry") {
    Rig rig;
    const auto pump = rig.add({"pump-7"});
    auto token = run({HUBGATE_BINARY, "sas-token", "-c", rig.config, "pump-7"});
    REQUIRE_MESSAGE(token.exit_code == 0, token.output);
    token.output.erase(token.output.find_last_not_of('\n') + 1);
    CHECK(token.output.rfind("SharedAccessSignature ", 0) == 0);
    const std::string topic = "devices/pump-7/messages/events/";
    {
        Gateway gw(rig.dir, rig.config_text, rig.metrics_port);
        REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
        const auto r = mosquitto_pub(rig.port, "pump-7", token.output, {"-q", "1", "-m", "x", "-t", topic});
        CHECK_MESSAGE(r.exit_code == 0, r.output);
        REQUIRE(gw.stop() == 0);
    }

    // The config now also defines pump-7, with another key: its entry is used, with a warning.
    const auto text = rig.config_text + device_toml("pump-7", kKey);
    Gateway gw(rig.dir, text, rig.metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    CHECK(gw.process().output().find("device pump-7 is in") != std::string::npos);
    CHECK(mosquitto_pub(rig.port, "pump-7", device_token("pump-7", kKey), {"-q", "1", "-m", "x", "-t", topic})
              .exit_code == 0);
    CHECK(mosquitto_pub(rig.port, "pump-7", token.output, {"-q", "1", "-m", "x", "-t", topic}).exit_code != 0);
    CHECK(rig.publish(pump, "registry key").exit_code != 0);
}

TEST_CASE("run as root, devices add leaves the database to the owner of the data directory") {
    if (geteuid() != 0) {
        MESSAGE("skipped: needs root (CI runs as root)");
        return;
    }
    Rig rig;
    REQUIRE(::chown(rig.dir.path().c_str(), 65534, 65534) == 0);  // nobody:nogroup, as a service user
    rig.add({"pump-7"});
    struct stat st {};
    REQUIRE(::stat(rig.dir.file("hubgate.db").c_str(), &st) == 0);
    CHECK(st.st_uid == 65534u);
    CHECK(st.st_gid == 65534u);
}

TEST_CASE("devices add and remove refuse what they cannot do, with exit 1 and the reason") {
    Rig rig;
    rig.add({"pump-7"});
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    const std::vector<Case> cases{
        {{"add", "pump-7"}, "registered already"},
        {{"add", "sensor-1"}, rig.config + ":"},  // where the config defines it
        {{"add", "bad id"}, "not valid"},
        {{"add", "ok-id", "--module", "bad/module"}, "module id 'bad/module' is not valid"},
        {{"remove", "sensor-1"}, "remove it there"},
        {{"remove", "nobody"}, "no device nobody"},
    };
    for (const auto& c : cases) {
        const auto r = rig.cli(c.args);
        INFO(c.args.front(), " ", c.args[1], ": ", r.output);
        CHECK(r.exit_code == 1);
        CHECK(r.output.find(c.says) != std::string::npos);
    }
    // None of them changed the registry.
    const auto listed = rig.cli({"list"});
    CHECK(count(listed.output, "registry") == 1);
    CHECK(listed.output.find("ok-id") == std::string::npos);
}

TEST_CASE("devices with a broken config exits 2 with FILE:LINE and touches no store") {
    Rig rig;
    const auto broken = rig.dir.write("hubgate.toml", "[gateway]\nbogus = 1\n");
    const auto r = run({HUBGATE_BINARY, "devices", "add", "pump-7", "-c", broken});
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(broken + ":2: ") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(rig.dir.file("hubgate.db")));
}
