// Translation rules over MQTT, end to end: real clients (mosquitto_pub / mosquitto_sub logging in with
// `-u DEVICE -P KEY` under the client ids the firmware uses) publish the payloads of tests/data/ (as each
// device family documents them) to a real `hubgate run` whose rules are config/examples/ as written; a
// real mosquitto plays the hub, and what it receives is decoded back into hub messages and checked:
// device id, module id, application properties, content type and encoding, creation time, body.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/process.hpp"
#include "tests/support/store_contents.hpp"
#include "tests/support/translate_corpus.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

// Every test device's key text, which auth = "password" takes as the MQTT password.
constexpr const char* kKey = "dGFzbW90YS0xLXRlc3Qta2V5LW5vdC1zZWNyZXQ=";

// A device as it logs in: user name = its device id, and the MQTT client id its firmware picks.
struct Device {
    std::string id;
    std::string client_id;
    std::string children;  // [[device]] children glob ("" = none)
};

const Device kTasmota{"tasmota-1", "DVES_3F2A1B", ""};  // Tasmota: DVES_ + the MAC's last three bytes
const Device kTasmota2{"tasmota-2", "DVES_A1B2C3", ""};
const Device kShelly{"shelly1pm-84CCA8", "shelly1pm-84CCA8", ""};  // Shelly Gen1: its device id
const Device kShellyHT{"shellyht-6FF1A2", "shellyht-6FF1A2", ""};
const Device kBridge{"z2m-bridge", "mqttjs_4f2a9c1e", "zb-*"};  // Zigbee2MQTT: MQTT.js's random id
const Device kHomie{"super-car", "super-car", ""};
const Device kEsphome{"livingroom", "livingroom-246f28a1b2c3", ""};  // ESPHome: node name + MAC

// A hub (mosquitto + listener) and a gateway whose listener "lan" (auth = "password") serves `devices`
// under `rules`.
struct Rig : C2dHub {
    Rig(const std::string& rules, const std::vector<Device>& devices, const std::string& module,
        const std::string& listener_extra = {}) {
        start_gateway(config_extra(rules, devices, module, listener_extra));
    }

    std::string config_extra(const std::string& rules, const std::vector<Device>& devices, const std::string& module,
                             const std::string& listener_extra) const {
        std::string extra = listener_toml("mqtt", port, "password", module, "name = \"lan\"\n" + listener_extra);
        for (const auto& d : devices) {
            extra += device_toml(d.id, kKey, module);
            if (!d.children.empty()) extra += "children = \"" + d.children + "\"\n\n";
        }
        extra += "[c2d]\nfeedback_max_delay_ms = 100\n\n";
        return extra + rules;
    }

    // mosquitto_pub as `d`, the payload read from tests/data/`file` (`-f`), at `qos`, plus `more`.
    RunResult pub(const Device& d, const std::string& topic, const std::string& file, int qos = 1,
                  std::vector<std::string> more = {}) const {
        return pub_on(port, d, topic, file, qos, std::move(more));
    }
    static RunResult pub_on(std::uint16_t on_port, const Device& d, const std::string& topic, const std::string& file,
                            int qos = 1, std::vector<std::string> more = {}) {
        std::vector<std::string> args{"-u", d.id, "-P", kKey, "-q", std::to_string(qos), "-t", topic, "-f",
                                      corpus_path(file)};
        args.insert(args.end(), more.begin(), more.end());
        return mosquitto_pub(on_port, d.client_id, std::nullopt, std::move(args));
    }

    double translated(const std::string& rule, const std::string& outcome) {
        return gw->metric("hubgate_translate_messages_total{rule=\"" + rule + "\",outcome=\"" + outcome + "\"}");
    }
    double metric(const std::string& series) { return gw->metric(series); }

    std::optional<HubMessage> from(const std::string& device_id) { return wait_from_device(*reader, device_id); }
    // The first message from `device_id` whose body is `body`.
    std::optional<HubMessage> with_body(const std::string& device_id, const std::string& body) {
        return wait_hub_message(*reader,
                                [&](const HubMessage& m) { return m.device_id == device_id && m.body == body; });
    }
    std::vector<HubMessage> telemetry() { return hub_telemetry(*reader); }

    std::uint16_t port = free_tcp_port();
};

// A mosquitto_sub holding a connection as device `d` (-d: its debug lines say when the SUBACK came;
// -v: each message as "topic payload"). Killed when destroyed.
class Subscriber {
public:
    Subscriber(std::uint16_t port, const Device& d, const std::vector<std::string>& filters,
               std::vector<std::string> more = {}) {
        // stdbuf: -d's lines are otherwise held in stdio's buffer until it fills.
        std::vector<std::string> argv{"stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1",
                                      "-p", std::to_string(port), "-i", d.client_id, "-u", d.id, "-P", kKey,
                                      "-q", "1", "-v", "-d"};
        for (const auto& f : filters) argv.insert(argv.end(), {"-t", f});
        argv.insert(argv.end(), more.begin(), more.end());
        process_ = std::make_unique<Process>(argv);
    }

    // True once the gateway answered its SUBSCRIBE.
    bool wait_subscribed() {
        return eventually([&] { return process_->output().find("received SUBACK") != std::string::npos; }, 10s);
    }
    // The messages received so far, "topic payload" each (debug lines left out).
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        std::istringstream in(process_->output());
        std::string line;
        while (std::getline(in, line))
            if (!line.empty() && line.rfind("Client ", 0) != 0 && line.rfind("Subscribed (", 0) != 0)
                out.push_back(line);
        return out;
    }
    bool wait_messages(std::size_t n) {
        return eventually([&] { return messages().size() >= n; }, 10s);
    }
    std::string output() const { return process_->output(); }
    Process& process() { return *process_; }

private:
    std::unique_ptr<Process> process_;
};

std::string ok(const RunResult& r) { return "exit " + std::to_string(r.exit_code) + ": " + r.output; }

}  // namespace

// ---- one worked example per device family ---------------------------------------------------------

TEST_CASE("Tasmota (tasmota.toml): SENSOR and STATE JSON arrive as sent with Time as creation time, and stat/POWER "
          "ON as {\"power\":true}") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    const auto sensor = corpus("tasmota/tele_SENSOR_ds18b20.json");
    const auto state = corpus("tasmota/tele_STATE.json");
    REQUIRE_MESSAGE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0,
                    rig.gw->process().output());
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/STATE", "tasmota/tele_STATE.json").exit_code == 0);
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_on.txt").exit_code == 0);

    const auto s = rig.with_body("tasmota-1", sensor);
    REQUIRE_MESSAGE(s, rig.gw->process().output());
    CHECK(s->module_id == "tasmota");
    CHECK(s->system.content_type == "application/json");
    CHECK(s->system.content_encoding == "utf-8");
    CHECK(s->system.creation_time == "2021-01-13T23:58:41Z");  // Tasmota's zone-less local time, taken as UTC
    CHECK(properties_text(*s) == "source=tasmota, kind=sensor");  // JSON kept as JSON: no source-content-type

    const auto st = rig.with_body("tasmota-1", state);
    REQUIRE(st);
    CHECK(st->module_id == "tasmota");
    CHECK(st->system.creation_time == "2019-10-31T11:14:59Z");
    CHECK(properties_text(*st) == "source=tasmota, kind=state");

    const auto p = rig.with_body("tasmota-1", R"({"power":true})");
    REQUIRE(p);
    CHECK(p->module_id == "tasmota");
    CHECK(p->system.content_type == "application/json");
    CHECK(p->system.content_encoding == "utf-8");
    CHECK(p->system.creation_time.empty());
    CHECK(properties_text(*p) == "source=tasmota, kind=power, source-content-type=text/plain");
    CHECK(rig.translated("tasmota-sensor", "accepted") == 1);
    CHECK(rig.translated("tasmota-power", "accepted") == 1);
}

TEST_CASE("Shelly Gen1 (shelly.toml): relay/0 on/off become {\"state\":true/false} with channel 0, and an H&T's "
          "sensor/temperature text becomes {\"temperature\":21.5}") {
    Rig rig(example_rules("shelly"), {kShelly, kShellyHT}, "shelly");
    REQUIRE(rig.pub(kShelly, "shellies/shelly1pm-84CCA8/relay/0", "shelly/relay_0_on.txt").exit_code == 0);
    REQUIRE(rig.pub(kShelly, "shellies/shelly1pm-84CCA8/relay/0", "shelly/relay_0_off.txt").exit_code == 0);
    // No document at hand prints a Shelly H&T reading (tests/data/README.md); Homie's documented "21.5"
    // is a temperature published as text, which is what the H&T does.
    REQUIRE(rig.pub(kShellyHT, "shellies/shellyht-6FF1A2/sensor/temperature", "homie/engine_temperature.txt")
                .exit_code == 0);

    for (const char* body : {R"({"state":true})", R"({"state":false})"}) {
        CAPTURE(body);
        const auto m = rig.with_body("shelly1pm-84CCA8", body);
        REQUIRE_MESSAGE(m, rig.gw->process().output());
        CHECK(m->module_id == "shelly");
        CHECK(m->system.content_type == "application/json");
        CHECK(m->system.content_encoding == "utf-8");
        CHECK(properties_text(*m) == "source=shelly, channel=0, source-content-type=text/plain");
    }
    const auto t = rig.from("shellyht-6FF1A2");
    REQUIRE(t);
    CHECK(t->body == R"({"temperature":21.5})");
    CHECK(t->module_id == "shelly");
    CHECK(t->system.content_type == "application/json");
    CHECK(properties_text(*t) == "source=shelly, source-content-type=text/plain");
    CHECK(rig.translated("shelly-relay", "accepted") == 2);
    CHECK(rig.translated("shelly-sensor", "accepted") == 1);
}

TEST_CASE("Zigbee2MQTT (zigbee2mqtt.toml): a bridge with children = \"zb-*\" speaks for its devices, each becoming "
          "the hub message's device id zb-<friendly name>") {
    Rig rig(example_rules("zigbee2mqtt"), {kBridge}, "zigbee");
    const auto climate = corpus("zigbee2mqtt/device_WSDCGQ01LM.json");
    const auto button = corpus("zigbee2mqtt/device_WXKG01LM.json");
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/0x00158d00018255df", "zigbee2mqtt/device_WSDCGQ01LM.json").exit_code == 0);
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/0x00158d0001d8e1d2", "zigbee2mqtt/device_WXKG01LM.json").exit_code == 0);

    const auto a = rig.from("zb-0x00158d00018255df");
    REQUIRE_MESSAGE(a, rig.gw->process().output());
    CHECK(a->body == climate);  // JSON kept byte for byte, indentation and all
    CHECK(a->module_id == "zigbee");
    CHECK(a->system.content_type == "application/json");
    CHECK(a->system.content_encoding == "utf-8");
    CHECK(properties_text(*a) == "source=zigbee2mqtt, friendly_name=0x00158d00018255df");
    const auto b = rig.from("zb-0x00158d0001d8e1d2");
    REQUIRE(b);
    CHECK(b->body == button);
    CHECK(b->module_id == "zigbee");
    CHECK(properties_text(*b) == "source=zigbee2mqtt, friendly_name=0x00158d0001d8e1d2");
    CHECK(rig.translated("z2m-device", "accepted") == 2);
}

TEST_CASE("Homie (homie.toml): property values and $state become {\"<property>\":value} with node and property") {
    Rig rig(example_rules("homie"), {kHomie}, "homie");
    REQUIRE(rig.pub(kHomie, "homie/super-car/$state", "homie/state_init.txt").exit_code == 0);
    REQUIRE(rig.pub(kHomie, "homie/super-car/engine/temperature", "homie/engine_temperature.txt").exit_code == 0);
    REQUIRE(rig.pub(kHomie, "homie/super-car/light/power", "homie/light_power.txt").exit_code == 0);

    const auto s = rig.with_body("super-car", R"({"state":"init"})");
    REQUIRE_MESSAGE(s, rig.gw->process().output());
    CHECK(s->module_id == "homie");
    CHECK(properties_text(*s) == "source=homie, source-content-type=text/plain");
    const auto t = rig.with_body("super-car", R"({"temperature":21.5})");
    REQUIRE(t);
    CHECK(t->module_id == "homie");
    CHECK(t->system.content_type == "application/json");
    CHECK(t->system.content_encoding == "utf-8");
    CHECK(properties_text(*t) == "source=homie, node=engine, property=temperature, source-content-type=text/plain");
    const auto p = rig.with_body("super-car", R"({"power":true})");
    REQUIRE(p);
    CHECK(properties_text(*p) == "source=homie, node=light, property=power, source-content-type=text/plain");
    CHECK(rig.translated("homie-state", "accepted") == 1);
    CHECK(rig.translated("homie-property", "accepted") == 2);
}

TEST_CASE("ESPHome (esphome.toml): entity states become {\"<entity>\":value} with the component, and status stays a "
          "string") {
    Rig rig(example_rules("esphome"), {kEsphome}, "esphome");
    REQUIRE(rig.pub(kEsphome, "livingroom/status", "esphome/status_online.txt").exit_code == 0);
    REQUIRE(rig.pub(kEsphome, "livingroom/binary_sensor/motion/state", "esphome/binary_sensor_state_on.txt")
                .exit_code == 0);
    REQUIRE(rig.pub(kEsphome, "livingroom/sensor/living_room_temperature/state", "esphome/sensor_state_nan_as_none.txt")
                .exit_code == 0);

    const auto s = rig.with_body("livingroom", R"({"status":"online"})");
    REQUIRE_MESSAGE(s, rig.gw->process().output());
    CHECK(s->module_id == "esphome");
    CHECK(properties_text(*s) == "source=esphome, source-content-type=text/plain");
    const auto m = rig.with_body("livingroom", R"({"motion":true})");
    REQUIRE(m);
    CHECK(m->module_id == "esphome");
    CHECK(m->system.content_type == "application/json");
    CHECK(m->system.content_encoding == "utf-8");
    CHECK(properties_text(*m) == "source=esphome, component=binary_sensor, source-content-type=text/plain");
    // A NaN reading published as None (publish_nan_as_none) is neither a number nor a boolean.
    const auto n = rig.with_body("livingroom", R"({"living_room_temperature":"None"})");
    REQUIRE(n);
    CHECK(properties_text(*n) == "source=esphome, component=sensor, source-content-type=text/plain");
}

// ---- MQTT details commodity devices rely on -----------------------------------------------------

TEST_CASE("a QoS 0 message through a rule is stored like a QoS 1 one") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    const auto r = rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_off.txt", 0);
    REQUIRE_MESSAGE(r.exit_code == 0, ok(r));
    const auto m = rig.from("tasmota-1");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == R"({"power":false})");
    CHECK(properties_text(*m) == "source=tasmota, kind=power, source-content-type=text/plain");
    CHECK(rig.metric("hubgate_mqtt_messages_total{qos=\"0\"}") == 1);
}

TEST_CASE("the retain flag (-r) is accepted and ignored: the message is stored once and never replayed to a later "
          "subscriber") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    // Tasmota publishes its LWT "Online" retained after connecting.
    const auto r = rig.pub(kTasmota, "tele/tasmota-1/LWT", "tasmota/tele_LWT_online.txt", 1, {"-r"});
    REQUIRE_MESSAGE(r.exit_code == 0, ok(r));
    const auto m = rig.from("tasmota-1");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == R"({"status":"Online"})");
    CHECK(properties_text(*m) == "source=tasmota, kind=availability, source-content-type=text/plain");

    // A subscriber to that very topic: a broker keeping retained messages would send "Online" right
    // after the SUBACK. The first (and only) thing it gets is the C2D message sent after the SUBACK.
    Subscriber sub(rig.port, kTasmota, {"tele/tasmota-1/#", "cmnd/tasmota-1/#"});
    REQUIRE_MESSAGE(sub.wait_subscribed(), sub.output());
    rig.send(C2dSend("retain-c2d-1", "tasmota-1").with_property("command", "Power").with_body("ON"));
    REQUIRE_MESSAGE(sub.wait_messages(1), sub.output() << rig.gw->process().output());
    CHECK(sub.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power ON"});
    CHECK(rig.wait_feedback("retain-c2d-1", "Success"));
    CHECK(rig.telemetry().size() == 1);
}

TEST_CASE("a Will (Tasmota's LWT Offline) is stored through the rules when the client dies without DISCONNECT") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    const std::string offline = corpus("tasmota/tele_LWT_offline.txt");
    Subscriber device(rig.port, kTasmota, {"cmnd/tasmota-1/#"},
                      {"--will-topic", "tele/tasmota-1/LWT", "--will-payload", offline, "--will-qos", "1",
                       "--will-retain"});
    REQUIRE_MESSAGE(device.wait_subscribed(), device.output());
    device.process().signal(SIGKILL);  // the kernel closes the socket: no DISCONNECT
    const auto m = rig.from("tasmota-1");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == R"({"status":"Offline"})");
    CHECK(m->module_id == "tasmota");
    CHECK(m->system.content_type == "application/json");
    CHECK(properties_text(*m) == "source=tasmota, kind=availability, source-content-type=text/plain");
    CHECK(rig.metric("hubgate_mqtt_wills_total") == 1);
    CHECK(rig.translated("tasmota-lwt", "accepted") == 1);
}

TEST_CASE("a Will is not stored when the client ends with DISCONNECT") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    const std::string offline = corpus("tasmota/tele_LWT_offline.txt");
    // mosquitto_pub publishes its message, then disconnects cleanly.
    const auto r = rig.pub(kTasmota, "tele/tasmota-1/LWT", "tasmota/tele_LWT_online.txt", 1,
                           {"-r", "--will-topic", "tele/tasmota-1/LWT", "--will-payload", offline, "--will-retain"});
    REQUIRE_MESSAGE(r.exit_code == 0, ok(r));
    // The connection is gone (a Will would have been stored by then), then a later message as a marker.
    REQUIRE(eventually([&] { return rig.metric("hubgate_mqtt_connections") == 0; }, 10s));
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_on.txt").exit_code == 0);
    REQUIRE_MESSAGE(rig.with_body("tasmota-1", R"({"power":true})"), rig.gw->process().output());
    std::vector<std::string> bodies;
    for (const auto& m : rig.telemetry()) bodies.push_back(m.body);
    CHECK(bodies == std::vector<std::string>{R"({"status":"Online"})", R"({"power":true})"});
    CHECK(rig.metric("hubgate_mqtt_wills_total") == 0);
}

// ---- identity, decode errors, unmatched topics ---------------------------------------------------

TEST_CASE("auth = \"password\": the user name is the device id and the password its key text, and a wrong key is "
          "refused at CONNECT") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    // tasmota.toml's example key: another device's.
    const std::string other_key = "a2l0Y2hlbi1wbHVnLWV4YW1wbGUta2V5LW5vdC1zZWNyZXQ=";
    const auto wrong = mosquitto_pub(rig.port, kTasmota.client_id, std::nullopt,
                                     {"-u", kTasmota.id, "-P", other_key, "-q", "1", "-t", "stat/tasmota-1/POWER", "-f",
                                      corpus_path("tasmota/stat_POWER_on.txt")});
    CHECK_MESSAGE(wrong.exit_code != 0, ok(wrong));
    CHECK(rig.metric("hubgate_mqtt_connects_refused_total{reason=\"bad_password\"}") == 1);
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_off.txt").exit_code == 0);
    REQUIRE_MESSAGE(rig.from("tasmota-1"), rig.gw->process().output());
    const auto all = rig.telemetry();
    REQUIRE(all.size() == 1);
    CHECK(all[0].body == R"({"power":false})");
}

TEST_CASE("a device publishing through a rule as another device is acknowledged, not stored, and counted as spoof") {
    Rig rig(example_rules("tasmota"), {kTasmota, kTasmota2}, "tasmota");
    const auto r = rig.pub(kTasmota, "tele/tasmota-2/SENSOR", "tasmota/tele_SENSOR_ds18b20.json");
    CHECK_MESSAGE(r.exit_code == 0, ok(r));  // PUBACK: MQTT 3.1.1 has no negative one
    CHECK(rig.translated("tasmota-sensor", "spoof") == 1);
    // Still connected and heard: its own message after it arrives, and nothing before it.
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_pow.json").exit_code == 0);
    REQUIRE_MESSAGE(rig.from("tasmota-1"), rig.gw->process().output());
    const auto all = rig.telemetry();
    REQUIRE(all.size() == 1);
    CHECK(all[0].device_id == "tasmota-1");
    CHECK(all[0].body == corpus("tasmota/tele_SENSOR_pow.json"));
}

TEST_CASE("a bridge speaks for the children its glob matches, and a child outside the glob is refused as spoof") {
    // A bridge allowed IEEE-address names only (children = "zb-0x*").
    Device bridge = kBridge;
    bridge.children = "zb-0x*";
    Rig rig(example_rules("zigbee2mqtt"), {bridge}, "zigbee");
    const auto refused = rig.pub(bridge, "zigbee2mqtt/living_room_lamp", "zigbee2mqtt/device_LED1545G12.json");
    CHECK_MESSAGE(refused.exit_code == 0, ok(refused));
    CHECK(rig.translated("z2m-device", "spoof") == 1);
    REQUIRE(rig.pub(bridge, "zigbee2mqtt/0x000b57fffec6a5b2", "zigbee2mqtt/device_LED1545G12.json").exit_code == 0);
    const auto m = rig.from("zb-0x000b57fffec6a5b2");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == corpus("zigbee2mqtt/device_LED1545G12.json"));
    CHECK(properties_text(*m) == "source=zigbee2mqtt, friendly_name=0x000b57fffec6a5b2");
    const auto all = rig.telemetry();
    REQUIRE(all.size() == 1);  // nothing for zb-living_room_lamp before it
    CHECK(rig.translated("z2m-device", "accepted") == 1);
}

TEST_CASE("an undecodable payload is kept raw with decode-error (Zigbee2MQTT 1.x's plain bridge/state under a JSON "
          "rule)") {
    Rig rig(example_rules("zigbee2mqtt"), {kBridge}, "zigbee");
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge_state_online.txt").exit_code == 0);
    const auto m = rig.from("z2m-bridge");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == "online");  // the bytes as they came
    CHECK(m->module_id == "zigbee");
    CHECK(m->system.content_type == "application/octet-stream");
    CHECK(m->system.content_encoding.empty());
    CHECK(m->system.creation_time.empty());
    CHECK(properties_text(*m) == "source=zigbee2mqtt, decode-error=invalid JSON at byte 0");
    CHECK(rig.translated("z2m-bridge-state", "decode_error") == 1);
}

TEST_CASE("on_decode_error = \"refuse\": an undecodable payload is acknowledged, not stored, and counted") {
    // zigbee2mqtt.toml's bridge-state rule, refusing what is not JSON.
    const std::string rules = R"([[rule]]
name = "z2m-bridge-state"
listeners = ["lan"]
topic = "zigbee2mqtt/bridge/state"
format = "json"
module = "zigbee"
properties = { source = "zigbee2mqtt" }
on_decode_error = "refuse"
)";
    Rig rig(rules, {kBridge}, "zigbee");
    const auto r = rig.pub(kBridge, "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge_state_offline.txt");
    CHECK_MESSAGE(r.exit_code == 0, ok(r));
    CHECK(rig.translated("z2m-bridge-state", "refused_decode") == 1);
    // Zigbee2MQTT 2.x's JSON form is taken, and is the only message at the hub.
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge_event_device_joined.json").exit_code == 0);
    REQUIRE_MESSAGE(rig.from("z2m-bridge"), rig.gw->process().output());
    const auto all = rig.telemetry();
    REQUIRE(all.size() == 1);
    CHECK(all[0].body == corpus("zigbee2mqtt/bridge_event_device_joined.json"));
    CHECK(properties_text(all[0]) == "source=zigbee2mqtt");
}

TEST_CASE("a topic no rule matches: unmatched = refuse closes the connection, drop acknowledges, raw stores it with "
          "mqtt-topic") {
    // One gateway, three listeners that zigbee2mqtt.toml's rules all name; the bridge publishes
    // zigbee2mqtt/bridge/event, which no rule maps.
    std::string rules = example_rules("zigbee2mqtt");
    const std::string one = "listeners = [\"lan\"]", three = "listeners = [\"lan-refuse\", \"lan-drop\", \"lan-raw\"]";
    for (auto at = rules.find(one); at != std::string::npos; at = rules.find(one, at + three.size()))
        rules.replace(at, one.size(), three);
    C2dHub rig;
    const auto refuse_port = free_tcp_port(), drop_port = free_tcp_port(), raw_port = free_tcp_port();
    std::string extra =
        listener_toml("mqtt", refuse_port, "password", "zigbee", "name = \"lan-refuse\"\nunmatched = \"refuse\"\n");
    extra += listener_toml("mqtt", drop_port, "password", "zigbee", "name = \"lan-drop\"\nunmatched = \"drop\"\n");
    extra += listener_toml("mqtt", raw_port, "password", "zigbee", "name = \"lan-raw\"\nunmatched = \"raw\"\n");
    extra += device_toml(kBridge.id, kKey, "zigbee") + "children = \"zb-*\"\n\n" + rules;
    rig.start_gateway(extra);
    auto metric = [&](const std::string& s) { return rig.gw->metric(s); };
    const std::string event = "zigbee2mqtt/bridge_event_device_joined.json";

    const auto refused = Rig::pub_on(refuse_port, kBridge, "zigbee2mqtt/bridge/event", event);
    CHECK_MESSAGE(refused.exit_code != 0, ok(refused));  // closed before any PUBACK
    CHECK(metric("hubgate_translate_unmatched_total{listener=\"lan-refuse\",action=\"refuse\"}") == 1);
    const auto dropped = Rig::pub_on(drop_port, kBridge, "zigbee2mqtt/bridge/event", event);
    CHECK_MESSAGE(dropped.exit_code == 0, ok(dropped));
    CHECK(metric("hubgate_translate_unmatched_total{listener=\"lan-drop\",action=\"drop\"}") == 1);
    const auto kept = Rig::pub_on(raw_port, kBridge, "zigbee2mqtt/bridge/event", event);
    CHECK_MESSAGE(kept.exit_code == 0, ok(kept));
    CHECK(metric("hubgate_translate_unmatched_total{listener=\"lan-raw\",action=\"raw\"}") == 1);

    const auto raw = wait_from_device(*rig.reader, "z2m-bridge");
    REQUIRE_MESSAGE(raw, rig.gw->process().output());
    CHECK(raw->body == corpus(event));
    CHECK(raw->module_id == "zigbee");
    CHECK(raw->system.content_type == "application/octet-stream");
    CHECK(properties_text(*raw) == "mqtt-topic=zigbee2mqtt/bridge/event");
    // A device message after them all: the only other message at the hub.
    REQUIRE(Rig::pub_on(drop_port, kBridge, "zigbee2mqtt/0x00158d00018255df", "zigbee2mqtt/device_WSDCGQ01LM.json")
                .exit_code == 0);
    REQUIRE(wait_from_device(*rig.reader, "zb-0x00158d00018255df"));
    const auto all = hub_telemetry(*rig.reader);
    CHECK(all.size() == 2);
}

// ---- C2D to translated devices --------------------------------------------------------------------

TEST_CASE("C2D for a Tasmota reaches its cmnd/# subscription as cmnd/<t>/<command> with the body, and the hub gets "
          "Success") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    // The route: the last message accepted from tasmota-1 (rule tasmota-lwt, device = tasmota-1).
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/LWT", "tasmota/tele_LWT_online.txt", 1, {"-r"}).exit_code == 0);
    Subscriber device(rig.port, kTasmota, {"cmnd/tasmota-1/#"});
    REQUIRE_MESSAGE(device.wait_subscribed(), device.output());
    rig.send(C2dSend("tasmota-c2d-1", "tasmota-1").with_property("command", "Power").with_body("ON"));
    REQUIRE_MESSAGE(device.wait_messages(1), device.output() << rig.gw->process().output());
    CHECK(device.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power ON"});
    const auto f = rig.wait_feedback("tasmota-c2d-1", "Success");
    REQUIRE(f);
    CHECK(f->device_id == "tasmota-1");
}

TEST_CASE("C2D without the property its c2d_topic names is rejected with feedback naming it, and never sent") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0);
    Subscriber device(rig.port, kTasmota, {"cmnd/tasmota-1/#"});
    REQUIRE_MESSAGE(device.wait_subscribed(), device.output());
    rig.send(C2dSend("no-command-1", "tasmota-1").with_body("ON"));  // no `command` property
    const auto f = rig.wait_feedback("no-command-1", "Rejected");
    REQUIRE_MESSAGE(f, rig.gw->process().output());
    CHECK(f->device_id == "tasmota-1");
    CHECK_MESSAGE(f->description.find("command") != std::string::npos, f->description);
    // The next command goes through, and is the only one the device ever saw.
    rig.send(C2dSend("with-command-2", "tasmota-1").with_property("command", "Status").with_body("0"));
    REQUIRE(rig.wait_feedback("with-command-2", "Success"));
    CHECK(device.messages() == std::vector<std::string>{"cmnd/tasmota-1/Status 0"});
}

TEST_CASE("C2D for a Zigbee2MQTT child goes out on the bridge's connection as zigbee2mqtt/<name>/set") {
    Rig rig(example_rules("zigbee2mqtt"), {kBridge}, "zigbee");
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/0x000b57fffec6a5b2", "zigbee2mqtt/device_LED1545G12.json").exit_code == 0);
    REQUIRE_MESSAGE(rig.from("zb-0x000b57fffec6a5b2"), rig.gw->process().output());
    // Zigbee2MQTT subscribes to its whole base topic.
    Subscriber bridge(rig.port, kBridge, {"zigbee2mqtt/#"});
    REQUIRE_MESSAGE(bridge.wait_subscribed(), bridge.output());
    rig.send(C2dSend("lamp-on-1", "zb-0x000b57fffec6a5b2").with_body(R"({"state":"ON","brightness":255})"));
    REQUIRE_MESSAGE(bridge.wait_messages(1), bridge.output() << rig.gw->process().output());
    CHECK(bridge.messages() ==
          std::vector<std::string>{R"(zigbee2mqtt/0x000b57fffec6a5b2/set {"state":"ON","brightness":255})"});
    const auto f = rig.wait_feedback("lamp-on-1", "Success");
    REQUIRE(f);
    CHECK(f->device_id == "zb-0x000b57fffec6a5b2");
}

TEST_CASE("C2D sent while a Tasmota is offline reaches it once it connects and subscribes again") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0);
    REQUIRE(eventually([&] { return rig.metric("hubgate_mqtt_connections") == 0; }, 10s));
    rig.send(C2dSend("while-offline-1", "tasmota-1").with_property("command", "Power").with_body("OFF"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == 1; }, 10s));
    Subscriber device(rig.port, kTasmota, {"cmnd/tasmota-1/#"});
    REQUIRE_MESSAGE(device.wait_messages(1), device.output() << rig.gw->process().output());
    CHECK(device.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power OFF"});
    CHECK(rig.wait_feedback("while-offline-1", "Success"));
}

TEST_CASE("a subscription granted QoS 0 gets C2D at QoS 0, and the send completes it (Success)") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_on.txt").exit_code == 0);
    Subscriber device(rig.port, kTasmota, {"cmnd/tasmota-1/#"}, {"-q", "0"});
    REQUIRE_MESSAGE(device.wait_subscribed(), device.output());
    rig.send(C2dSend("qos0-1", "tasmota-1").with_property("command", "Power").with_body("OFF"));
    REQUIRE_MESSAGE(device.wait_messages(1), device.output() << rig.gw->process().output());
    CHECK(device.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power OFF"});
    CHECK(device.output().find("q0, r0") != std::string::npos);  // "received PUBLISH (d0, q0, r0, ..."
    CHECK(rig.wait_feedback("qos0-1", "Success"));
}

TEST_CASE("a device subscribed to # receives only the C2D addressed to itself, never another device's") {
    Rig rig(example_rules("tasmota"), {kTasmota, kTasmota2}, "tasmota");
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0);
    REQUIRE(rig.pub(kTasmota2, "tele/tasmota-2/SENSOR", "tasmota/tele_SENSOR_pow.json").exit_code == 0);
    // tasmota-1 also tries to speak for tasmota-2 (refused: it must not become tasmota-2's way in).
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-2/POWER", "tasmota/stat_POWER_on.txt").exit_code == 0);
    CHECK(rig.translated("tasmota-power", "spoof") == 1);
    Subscriber greedy(rig.port, kTasmota, {"#"});
    Subscriber other(rig.port, kTasmota2, {"cmnd/tasmota-2/#"});
    REQUIRE_MESSAGE(greedy.wait_subscribed(), greedy.output());
    REQUIRE_MESSAGE(other.wait_subscribed(), other.output());
    rig.send(C2dSend("for-2", "tasmota-2").with_property("command", "Power").with_body("ON"));
    REQUIRE_MESSAGE(rig.wait_feedback("for-2", "Success"), rig.gw->process().output());
    CHECK(other.messages() == std::vector<std::string>{"cmnd/tasmota-2/Power ON"});
    rig.send(C2dSend("for-1", "tasmota-1").with_property("command", "Power").with_body("OFF"));
    REQUIRE_MESSAGE(greedy.wait_messages(1), greedy.output());
    CHECK(rig.wait_feedback("for-1", "Success"));
    CHECK(greedy.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power OFF"});
}

TEST_CASE("after a gateway restart, C2D still reaches a Tasmota on its cmnd/ topic and a bridge's child through "
          "the bridge (routes are persisted)") {
    Rig rig(example_rules("tasmota") + example_rules("zigbee2mqtt"), {kTasmota, kBridge}, "edge");
    REQUIRE(rig.pub(kTasmota, "stat/tasmota-1/POWER", "tasmota/stat_POWER_off.txt").exit_code == 0);
    REQUIRE(rig.pub(kBridge, "zigbee2mqtt/0x000b57fffec6a5b2", "zigbee2mqtt/device_LED1545G12.json").exit_code == 0);
    REQUIRE(rig.from("tasmota-1"));
    REQUIRE(rig.from("zb-0x000b57fffec6a5b2"));
    REQUIRE(rig.gw->stop() == 0);
    rig.gw->start();
    rig.wait_ready_and_upstream();

    // Neither has sent anything since the restart.
    Subscriber tasmota(rig.port, kTasmota, {"cmnd/tasmota-1/#"});
    Subscriber bridge(rig.port, kBridge, {"zigbee2mqtt/#"});
    REQUIRE_MESSAGE(tasmota.wait_subscribed(), tasmota.output());
    REQUIRE_MESSAGE(bridge.wait_subscribed(), bridge.output());
    rig.send(C2dSend("after-restart-1", "tasmota-1").with_property("command", "Power").with_body("TOGGLE"));
    rig.send(C2dSend("after-restart-2", "zb-0x000b57fffec6a5b2").with_body(R"({"state":"OFF"})"));
    CHECK_MESSAGE(tasmota.wait_messages(1), tasmota.output() << rig.gw->process().output());
    CHECK(tasmota.messages() == std::vector<std::string>{"cmnd/tasmota-1/Power TOGGLE"});
    CHECK(rig.wait_feedback("after-restart-1", "Success"));
    CHECK_MESSAGE(bridge.wait_messages(1), bridge.output() << rig.gw->process().output());
    CHECK(bridge.messages() == std::vector<std::string>{R"(zigbee2mqtt/0x000b57fffec6a5b2/set {"state":"OFF"})"});
    CHECK(rig.wait_feedback("after-restart-2", "Success"));
}

// ---- reload under load ----------------------------------------------------------------------------

namespace {

// `mosquitto_pub -l` (one message per line of `lines_file`, pipelined, QoS 1) as device `d` with
// auth = "password" credentials. Exit code 0 once every line was acknowledged.
RunResult pub_lines(std::uint16_t port, const Device& d, const std::string& topic, const std::string& lines_file) {
    // run() gives no stdin: a shell redirects the file, the arguments passed through "$@".
    return run({"sh", "-c", "f=$1; shift; exec mosquitto_pub \"$@\" < \"$f\"", "sh", lines_file, "-V", "mqttv311", "-h",
                "127.0.0.1", "-p", std::to_string(port), "-i", d.client_id, "-u", d.id, "-P", kKey, "-q", "1", "-t",
                topic, "-l"},
               60s);
}

// Tasmota's SENSOR payload as a TelePeriod sends it again and again, with the time of reading `n`
// (2021-01-13T00:00:00 + n s) in place of the documented one: what tells the messages apart.
std::string reading_time(int n) {
    char t[32];
    std::snprintf(t, sizeof t, "2021-01-13T%02d:%02d:%02d", n / 3600, n / 60 % 60, n % 60);
    return t;
}

}  // namespace

TEST_CASE("a rule reload (SIGHUP) under load loses nothing: every acknowledged message arrives once, translated by "
          "the old rule or the new one") {
    constexpr int kPerDevice = 1500;
    const std::vector<Device> devices{kTasmota, kTasmota2};
    const std::string v1 = example_rules("tasmota");
    // The edit: tasmota-sensor renamed and its `kind` property changed.
    std::string v2 = v1;
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"name = \"tasmota-sensor\"", "name = \"tasmota-sensor-v2\""},
             {"kind = \"sensor\" }", "kind = \"sensor-v2\" }"}}) {
        const auto at = v2.find(from);
        REQUIRE_MESSAGE(at != std::string::npos, "tasmota.toml no longer has " << from);
        v2.replace(at, from.size(), to);
    }
    Rig rig(v1, devices, "tasmota");

    const std::string payload = corpus("tasmota/tele_SENSOR_ds18b20.json");
    const std::string documented_time = "2021-01-13T23:58:41";
    REQUIRE(payload.find(documented_time) != std::string::npos);
    auto with_time = [&](const std::string& t) {
        std::string p = payload;
        p.replace(p.find(documented_time), documented_time.size(), t);
        return p;
    };
    std::vector<std::string> files;
    for (const auto& d : devices) {
        std::string lines;
        for (int n = 0; n < kPerDevice; ++n) lines += with_time(reading_time(n)) + "\n";
        files.push_back(rig.dir.write("lines-" + d.id + ".txt", lines));
    }

    std::vector<RunResult> results(devices.size());
    std::atomic<int> running{static_cast<int>(devices.size())};
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < devices.size(); ++i)
        clients.emplace_back([&, i] {
            results[i] = pub_lines(rig.port, devices[i], "tele/" + devices[i].id + "/SENSOR", files[i]);
            --running;
        });
    // Under load: once the gateway has taken some messages, the rules are edited and reloaded, and
    // reloaded again and again until the devices are done.
    const bool loaded = eventually([&] { return rig.metric("hubgate_mqtt_messages_total{qos=\"1\"}") >= 100; }, 30s);
    const double before_edit = rig.metric("hubgate_mqtt_messages_total{qos=\"1\"}");
    {
        const std::string text = minimal_config(rig.dir, rig.metrics_port, rig.config_extra(v2, devices, "tasmota", {}),
                                                {}, rig.hub.url());
        std::ofstream(rig.gw->config_path(), std::ios::trunc) << text;
    }
    int sighups = 0;
    do {
        rig.gw->process().signal(SIGHUP);
        ++sighups;
        std::this_thread::sleep_for(5ms);
    } while (running > 0);
    for (auto& t : clients) t.join();
    REQUIRE_MESSAGE(loaded, rig.gw->process().output());
    for (std::size_t i = 0; i < devices.size(); ++i) REQUIRE_MESSAGE(results[i].exit_code == 0, ok(results[i]));
    REQUIRE_MESSAGE(eventually([&] { return rig.gw->process().output().find("reloaded ") != std::string::npos; }, 10s),
                    rig.gw->process().output());
    // After the reload, each device once more: the new rule only.
    for (const auto& d : devices)
        REQUIRE(rig.pub(d, "tele/" + d.id + "/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0);

    const std::size_t total = devices.size() * (kPerDevice + 1);
    REQUIRE_MESSAGE(rig.reader->wait_for_messages(total, 60s), rig.gw->process().output());
    const auto all = rig.telemetry();
    CHECK(all.size() == total);
    // Per device and reading (its creation time): which rule translated it.
    std::map<std::string, std::map<std::string, std::string>> kind_of;
    std::size_t old_rule = 0, new_rule = 0, duplicates = 0, wrong = 0;
    for (const auto& m : all) {
        const std::string kind = property(m, "kind");
        if (kind == "sensor") ++old_rule;
        else if (kind == "sensor-v2") ++new_rule;
        const bool right = (kind == "sensor" || kind == "sensor-v2") &&
                           properties_text(m) == "source=tasmota, kind=" + kind && m.module_id == "tasmota" &&
                           m.system.content_type == "application/json" && m.system.creation_time.size() == 20 &&
                           m.body == with_time(m.system.creation_time.substr(0, 19));
        if (!right) {
            if (++wrong <= 3) FAIL_CHECK("mistranslated: " << describe(m));
            continue;
        }
        if (!kind_of[m.device_id].emplace(m.system.creation_time.substr(0, 19), kind).second) ++duplicates;
    }
    CHECK(wrong == 0);
    CHECK(duplicates == 0);
    for (const auto& d : devices) {
        CAPTURE(d.id);
        const auto& seen = kind_of[d.id];
        CHECK(seen.size() == static_cast<std::size_t>(kPerDevice + 1));
        // In the order the device sent them (reading time order): old rule, then new rule, never back.
        bool switched = false, back = false;
        for (int n = 0; n < kPerDevice; ++n) {
            const auto it = seen.find(reading_time(n));
            if (it == seen.end()) continue;
            if (it->second == "sensor-v2") switched = true;
            else if (switched) back = true;
        }
        CHECK_FALSE(back);
        const auto last = seen.find(documented_time);
        REQUIRE(last != seen.end());
        CHECK(last->second == "sensor-v2");
    }
    // What the gateway had taken before the edit was translated by the old rule.
    CHECK(static_cast<double>(old_rule) >= before_edit);
    CHECK(old_rule + new_rule == total);
    CHECK(rig.translated("tasmota-sensor", "accepted") == static_cast<double>(old_rule));
    CHECK(rig.translated("tasmota-sensor-v2", "accepted") == static_cast<double>(new_rule));
    MESSAGE(old_rule << " messages by the old rule, " << new_rule << " by the new one, " << sighups << " SIGHUPs");
}

TEST_CASE("a reload whose rules do not compile changes nothing: the rules before it keep translating") {
    Rig rig(example_rules("tasmota"), {kTasmota}, "tasmota");
    // A capture name the contract reserves: a check-config error.
    std::string broken = example_rules("tasmota");
    const std::string from = "topic = \"tele/{device}/SENSOR\"";
    const auto at = broken.find(from);
    REQUIRE(at != std::string::npos);
    broken.replace(at, from.size(), "topic = \"tele/{gateway}/SENSOR\"");
    const std::string extra = rig.config_extra(broken, {kTasmota}, "tasmota", {});
    std::ofstream(rig.gw->config_path(), std::ios::trunc)
        << minimal_config(rig.dir, rig.metrics_port, extra, {}, rig.hub.url());
    rig.gw->process().signal(SIGHUP);
    const auto refused = [&] { return rig.gw->process().output().find("reload refused") != std::string::npos; };
    REQUIRE_MESSAGE(eventually(refused, 10s), rig.gw->process().output());
    REQUIRE(rig.pub(kTasmota, "tele/tasmota-1/SENSOR", "tasmota/tele_SENSOR_ds18b20.json").exit_code == 0);
    const auto m = rig.from("tasmota-1");
    REQUIRE_MESSAGE(m, rig.gw->process().output());
    CHECK(m->body == corpus("tasmota/tele_SENSOR_ds18b20.json"));
    CHECK(properties_text(*m) == "source=tasmota, kind=sensor");
    CHECK(m->system.creation_time == "2021-01-13T23:58:41Z");
}
