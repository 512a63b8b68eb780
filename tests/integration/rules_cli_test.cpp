// `hubgate rules test` and config/examples/ as users run them: the real binary on real files, with
// the payloads of tests/data/ (each as its device family or standard documents it; sources in
// tests/data/README.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate::test;

namespace {

const std::string kExamples = HUBGATE_SOURCE_DIR "/config/examples/";
const std::string kData = HUBGATE_SOURCE_DIR "/tests/data/";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// DESIGN.md's rule, for a Tasmota that logs in as kitchen-plug.
const std::string kTasmotaConfig = R"([gateway]
id = "gw-01"

[[listener]]
name = "lan"
protocol = "mqtt"
bind = "127.0.0.1:1883"
auth = "password"

[upstream]
profile = "mqtt"
url = "tcp://127.0.0.1:1884"

[[device]]
id = "kitchen-plug"
key = "a2l0Y2hlbi1wbHVnLWV4YW1wbGUta2V5LW5vdC1zZWNyZXQ="

[[rule]]
name = "tasmota-sensor"
listeners = ["lan"]
topic = "tele/{device}/SENSOR"
format = "json"
device = "{device}"
module = "tasmota"
properties = { source = "tasmota", site = "{gateway}" }
time = "/Time"
c2d_topic = "cmnd/{device}/{prop:command}"
)";

RunResult rules_test(std::vector<std::string> args) {
    std::vector<std::string> argv{HUBGATE_BINARY, "rules", "test"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

// The line of `output` that starts with `prefix` ("" when there is none).
std::string line_of(const std::string& output, const std::string& prefix) {
    std::size_t at = output.find('\n' + prefix);
    if (output.rfind(prefix, 0) == 0)
        at = 0;
    else if (at == std::string::npos)
        return "";
    else
        ++at;
    return output.substr(at, output.find('\n', at) - at);
}

// The body as printed: the lines between "body (...):" and "hub: ".
std::string body_of(const std::string& output) {
    const std::string head = line_of(output, "body (");
    if (head.empty()) return "";
    const std::size_t at = output.find(head) + head.size() + 1;
    const std::size_t end = output.find("\nhub: ", at);
    return end == std::string::npos ? "" : output.substr(at, end - at);
}

std::string from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

}  // namespace

TEST_CASE("rules test prints the hub message a Tasmota tele/SENSOR payload becomes") {
    TempDir dir;
    const auto config = dir.write("hubgate.toml", kTasmotaConfig);
    const std::string payload = kData + "tasmota/tele_SENSOR_ds18b20.json";
    const auto r = rules_test({"-c", config, "--topic", "tele/kitchen-plug/SENSOR", "--payload-file", payload,
                               "--device", "kitchen-plug", "--client", "DVES_3D5E26"});
    CHECK(r.exit_code == 0);
    CHECK(r.output ==
          "listener: lan (mqtt, auth password)\n"
          "topic: tele/kitchen-plug/SENSOR (96 bytes)\n"
          "identity: kitchen-plug\n"
          "rule: tasmota-sensor\n"
          "verdict: accepted\n"
          "device: kitchen-plug\n"
          "module: tasmota\n"
          "system properties:\n"
          "  content-type: application/json\n"
          "  content-encoding: utf-8\n"
          "  creation-time: 2021-01-13T23:58:41Z\n"
          "application properties:\n"
          "  source: tasmota\n"
          "  site: gw-01\n"
          "body (JSON, 96 bytes):\n"
          "{\"Time\":\"2021-01-13T23:58:41\",\"DS18B20\":{\"Id\":\"030597946B04\",\"Temperature\":20.9},\"TempUnit\":\"C\"}\n"
          "hub: accepted (195 of 262144 bytes by IoT Hub's size rule)\n");
}

TEST_CASE("rules test says no rule matches a topic no rule names, what the listener would do, and exits 1") {
    TempDir dir;
    const auto config = dir.write("hubgate.toml", kTasmotaConfig);
    // The same reading on a topic no rule maps (the rule names tele/{device}/SENSOR only).
    const std::string payload = kData + "tasmota/tele_STATE.json";
    const auto r = rules_test({"-c", config, "--topic", "tele/kitchen-plug/STATE", "--payload-file", payload,
                               "--device", "kitchen-plug"});
    CHECK(r.exit_code == 1);
    CHECK(r.output ==
          "listener: lan (mqtt, auth password)\n"
          "topic: tele/kitchen-plug/STATE (289 bytes)\n"
          "identity: kitchen-plug\n"
          "no rule matches: the listener would acknowledge and drop it (unmatched = drop)\n");
}

TEST_CASE("rules test refuses a broken config with exit 2 and FILE:LINE: what, as check-config does") {
    TempDir dir;
    std::string text = kTasmotaConfig;
    text.replace(text.find("{prop:command}"), 14, "{nosuch}");  // an unknown placeholder, line 27
    const auto config = dir.write("broken.toml", text);
    const auto r = rules_test({"-c", config, "--topic", "tele/kitchen-plug/SENSOR", "--payload-file",
                               kData + "tasmota/tele_SENSOR_ds18b20.json"});
    CHECK(r.exit_code == 2);
    CHECK(r.output.rfind(config + ":27: ", 0) == 0);
    CHECK(r.output.find("nosuch") != std::string::npos);
    CHECK(r.output.find("rule:") == std::string::npos);
}

TEST_CASE("rules test refuses a device that speaks for another id as a spoof, and exits 1") {
    TempDir dir;
    const auto config = dir.write("hubgate.toml", kTasmotaConfig);
    const auto r = rules_test({"-c", config, "--topic", "tele/other-plug/SENSOR", "--payload-file",
                               kData + "tasmota/tele_SENSOR_ds18b20.json", "--device", "kitchen-plug"});
    CHECK(r.exit_code == 1);
    CHECK(line_of(r.output, "rule: ") == "rule: tasmota-sensor");
    CHECK(line_of(r.output, "verdict: ") == "verdict: spoof");
    CHECK(line_of(r.output, "hub: ") == "hub: not sent");
}

TEST_CASE("rules test leaves IoT Hub's own topics to the listener: rules do not apply to them") {
    TempDir dir;
    const auto config = dir.write("hubgate.toml", kTasmotaConfig);
    const auto r = rules_test({"-c", config, "--topic", "devices/kitchen-plug/messages/events/", "--payload-file",
                               kData + "tasmota/tele_SENSOR_ds18b20.json", "--device", "kitchen-plug"});
    CHECK(r.exit_code == 1);
    CHECK(line_of(r.output, "no rule applies: ") ==
          "no rule applies: this is IoT Hub's own topic, which the listener handles as IoT Hub does (docs/mqtt.md)");
    CHECK(r.output.find("rule:") == std::string::npos);
}

TEST_CASE("rules test knows a bridge added to the registry with devices add --children") {
    TempDir dir;
    const auto config = dir.write("hubgate.toml", "[gateway]\ndata_dir = \"" + dir.path() + "\"\n\n" +
                                                      R"([[listener]]
name = "lan"
protocol = "mqtt"
bind = "127.0.0.1:1883"
auth = "password"

[upstream]
profile = "mqtt"
url = "tcp://127.0.0.1:1884"

[[rule]]
name = "z2m-device"
topic = "zigbee2mqtt/{name}"
device = "zb-{name}"
)");
    const std::vector<std::string> args{"-c", config, "--topic", "zigbee2mqtt/0x00158d00018255df", "--device",
                                        "z2m-bridge", "--payload-file", kData + "zigbee2mqtt/device_WSDCGQ01LM.json"};
    // Not known yet: the rule's device is not the connection's.
    CHECK(line_of(rules_test(args).output, "verdict: ") == "verdict: spoof");

    const auto added = run({HUBGATE_BINARY, "devices", "add", "z2m-bridge", "--children", "zb-*", "-c", config});
    REQUIRE(added.exit_code == 0);
    const auto r = rules_test(args);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(line_of(r.output, "verdict: ") == "verdict: accepted");
    CHECK(line_of(r.output, "device: ") == "device: zb-0x00158d00018255df");
}

// --- config/examples/ ---

TEST_CASE("every config in config/examples passes check-config") {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(kExamples))
        if (e.path().extension() == ".toml") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() == 7);
    for (const auto& f : files) {
        const auto r = run({HUBGATE_BINARY, "check-config", "-c", f});
        INFO(f << ": " << r.output);
        CHECK(r.exit_code == 0);
        CHECK(r.output.find(": ok: ") != std::string::npos);
    }
}

// One documented payload per family, through the family's example config.
struct ExampleCase {
    const char* config;
    std::vector<std::string> where;  // --topic T / --path P, and --content-format / --device
    std::string payload_file;        // under tests/data/
    const char* device;
    const char* module;
    std::string body;  // the JSON body, compared as JSON
};

TEST_CASE("each example config turns its family's documented payload into the expected hub message") {
    const std::vector<ExampleCase> cases = {
        {"tasmota.toml",
         {"--topic", "stat/kitchen-plug/POWER", "--device", "kitchen-plug"},
         "tasmota/stat_POWER_on.txt", "kitchen-plug", "tasmota", R"({"power":true})"},
        {"shelly.toml",
         {"--topic", "shellies/shelly1pm-84CCA8/relay/0", "--device", "shelly1pm-84CCA8"},
         "shelly/relay_0_on.txt", "shelly1pm-84CCA8", "shelly", R"({"state":true})"},
        // The bridge publishes for its child; the page prints the JSON indented, kept as it came.
        {"zigbee2mqtt.toml",
         {"--topic", "zigbee2mqtt/0x00158d00018255df", "--device", "z2m-bridge"},
         "zigbee2mqtt/device_WSDCGQ01LM.json", "zb-0x00158d00018255df", "zigbee",
         R"({"temperature":27.34,"humidity":44.72})"},
        {"homie.toml",
         {"--topic", "homie/super-car/engine/temperature", "--device", "super-car"},
         "homie/engine_temperature.txt", "super-car", "homie", R"({"temperature":21.5})"},
        {"esphome.toml",
         {"--topic", "livingroom/binary_sensor/motion/state", "--device", "livingroom"},
         "esphome/binary_sensor_state_on.txt", "livingroom", "esphome", R"({"motion":true})"},
        {"senml-coap.toml",
         {"--path", "/sensors/soil-7", "--content-format", "110"},
         "senml/rfc8428-5.1.4-resolved-data.json", "soil-7", "senml", ""},
    };
    for (const auto& c : cases) {
        const auto r = rules_test([&] {
            std::vector<std::string> args{"-c", kExamples + c.config, "--payload-file", kData + c.payload_file};
            args.insert(args.end(), c.where.begin(), c.where.end());
            return args;
        }());
        INFO(c.config << ":\n" << r.output);
        CHECK(r.exit_code == 0);
        CHECK(line_of(r.output, "device: ") == std::string("device: ") + c.device);
        CHECK(line_of(r.output, "module: ") == std::string("module: ") + c.module);
        CHECK(!line_of(r.output, "body (JSON, ").empty());
        // SenML's resolved records (RFC 8428 section 5.1.4 prints the pack already resolved).
        const auto expected = c.body.empty() ? nlohmann::json::parse(read_file(kData + c.payload_file))
                                             : nlohmann::json::parse(c.body);
        CHECK(nlohmann::json::parse(body_of(r.output), nullptr, false) == expected);
    }
}

TEST_CASE("the SenML example config resolves RFC 8428's multiple-data-points pack, with the query as properties") {
    // Section 5.1.2: no times in the pack, so each record gets the receive time.
    const auto r = rules_test({"-c", kExamples + "senml-coap.toml", "--path", "/sensors/soil-7?site=north",
                               "--content-format", "110", "--payload-file",
                               kData + "senml/rfc8428-5.1.2-multiple-data-points.json"});
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(line_of(r.output, "device: ") == "device: soil-7");
    CHECK(line_of(r.output, "  site: ") == "  site: north");
    CHECK(line_of(r.output, "  source-content-type: ") == "  source-content-type: application/senml+json");
    CHECK(!line_of(r.output, "  creation-time: ").empty());
    const auto body = nlohmann::json::parse(body_of(r.output), nullptr, false);
    REQUIRE(body.is_array());
    REQUIRE(body.size() == 2);
    CHECK(body[0]["n"] == "urn:dev:ow:10e2073a01080063:voltage");
    CHECK(body[1]["n"] == "urn:dev:ow:10e2073a01080063:current");
    CHECK(body[0]["t"].is_number());
    CHECK(!body[0].contains("bn"));
}

TEST_CASE("the plain CBOR example config turns an RFC 8949 map into JSON from the DTLS identity") {
    // RFC 8949 Appendix A: a26161016162820203 is {"a": 1, "b": [2, 3]}.
    const auto vectors = nlohmann::json::parse(read_file(kData + "cbor/appendix_a.json"));
    std::string hex;
    for (const auto& v : vectors)
        if (v["hex"] == "a26161016162820203") hex = v["hex"];
    REQUIRE(!hex.empty());
    TempDir dir;
    const auto payload = dir.write("map.cbor", from_hex(hex));
    const auto r = rules_test({"-c", kExamples + "cbor-coap.toml", "--path", "/readings", "--content-format", "60",
                               "--device", "greenhouse", "--payload-file", payload});
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(line_of(r.output, "device: ") == "device: greenhouse");
    CHECK(line_of(r.output, "module: ") == "module: sensors");
    CHECK(line_of(r.output, "  source-content-type: ") == "  source-content-type: application/cbor");
    CHECK(body_of(r.output) == R"({"a":1,"b":[2,3]})");
}
