// npm's `coap` (node-coap) as a second CoAP device implementation against the real `hubgate run`:
// telemetry (JSON with query properties, a block-wise upload) into the store, and C2D through
// Observe with a hub (mosquitto) sending the commands and receiving the feedback.
// The client is tests/node/coap_client.js; `npm ci --prefix tests/node` installs node-coap.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

const std::string kNodeDir = std::string(HUBGATE_SOURCE_DIR) + "/tests/node";

std::vector<std::string> node_client(std::vector<std::string> args) {
    REQUIRE_MESSAGE(std::filesystem::exists(kNodeDir + "/node_modules/coap"),
                    "node-coap is not installed: run `npm ci --prefix tests/node` (scripts/test.sh does)");
    std::vector<std::string> argv{"node", kNodeDir + "/coap_client.js"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// The JSON lines coap_client.js printed.
std::vector<nlohmann::json> events(const std::string& output) {
    std::vector<nlohmann::json> out;
    std::size_t at = 0;
    while (at < output.size()) {
        const auto end = output.find('\n', at);
        const std::string line = output.substr(at, end == std::string::npos ? std::string::npos : end - at);
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object()) out.push_back(std::move(j));
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return out;
}

std::vector<nlohmann::json> events_named(const std::string& output, const std::string& name) {
    std::vector<nlohmann::json> out;
    for (auto& e : events(output))
        if (e.value("event", "") == name) out.push_back(e);
    return out;
}

std::string coap_listener(std::uint16_t port) { return listener_toml("coap", port, "none", "node"); }

// A gateway with a plain `coap` listener (auth none, module "node") and no hub: what it takes stays
// in its store.
struct NodeGateway {
    NodeGateway() { REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output()); }
    std::string url(const std::string& path) const { return "coap://127.0.0.1:" + std::to_string(coap_port) + path; }
    // SIGKILL, then what the store holds.
    std::vector<HubMessage> stored_after_kill() {
        gw.kill();
        return stored_messages(dir.file("hubgate.db"));
    }

    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t coap_port = free_udp_port();
    Gateway gw{dir, minimal_config(dir, metrics_port, coap_listener(coap_port)), metrics_port};
};

// The same listener on a gateway relaying to a hub, for C2D.
struct NodeC2dRig : C2dHub {
    NodeC2dRig() { start_gateway(coap_listener(coap_port) + "[c2d]\nfeedback_max_delay_ms = 200\n\n"); }
    std::string devicebound(const std::string& device) const {
        return "coap://127.0.0.1:" + std::to_string(coap_port) + "/devices/" + device + "/messages/devicebound";
    }
    std::uint16_t coap_port = free_udp_port();
};

// node-coap observing `devicebound` for `seconds`, settling what it gets with `how`. Started in the
// background; the hub sends once the registration was answered.
struct Observer {
    Observer(const std::string& devicebound, int seconds, const std::string& how)
        : process(node_client({"observe", devicebound, std::to_string(seconds), how})) {}
    bool registered() {
        return eventually([&] { return !events_named(process.output(), "registered").empty(); }, 10s);
    }
    std::string finish() {
        process.wait(30s);
        return process.output();
    }
    Process process;
};

}  // namespace

TEST_SUITE("node-coap") {

TEST_CASE("a node-coap JSON POST with query properties is answered 2.04 and stored with them") {
    NodeGateway rig;
    const auto r = run(node_client({"post", rig.url("/devices/node-1/messages/events?%24.mid=n-1&room=lab"),
                                    R"({"t":19.5})", "application/json"}),
                       20s);
    INFO(r.output);
    const auto answers = events_named(r.output, "response");
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].value("code", "") == "2.04");
    const auto stored = rig.stored_after_kill();
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].device_id == "node-1");
    CHECK(stored[0].module_id == "node");
    CHECK(stored[0].system.message_id == "n-1");
    CHECK(stored[0].system.content_type == "application/json");
    CHECK(stored[0].body == R"({"t":19.5})");
    const auto* room = stored[0].properties.find("room");
    CHECK((room && room->value == std::optional<std::string>("lab")));
}

TEST_CASE("a 100 KB block-wise upload from node-coap is stored whole") {
    NodeGateway rig;
    std::string body(100 * 1024, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('A' + i % 26);
    const auto r = run(node_client({"post", rig.url("/devices/node-2/messages/events"), body, "text/plain", "6"}), 30s);
    INFO(r.output.substr(0, 2000));
    const auto answers = events_named(r.output, "response");
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].value("code", "") == "2.04");
    const auto stored = rig.stored_after_kill();
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].body.size() == body.size());
    CHECK(stored[0].body == body);
}

TEST_CASE("a node-coap observer gets the hub's C2D message as a notification, completes it, and the hub gets "
          "Success feedback") {
    NodeC2dRig rig;
    Observer obs(rig.devicebound("node-obs"), 6, "complete");
    REQUIRE_MESSAGE(obs.registered(), obs.process.output());
    rig.send(C2dSend("node-c2d-1", "node-obs", "full").with_body("fan on").with_property("speed", "3"));
    const auto fb = rig.wait_feedback("node-c2d-1", "Success", 15s);
    const auto out = obs.finish();
    INFO(out);
    REQUIRE_MESSAGE(fb, "no Success feedback reached the hub");
    CHECK(fb->device_id == "node-obs");
    const auto notes = events_named(out, "notification");
    REQUIRE(!notes.empty());
    CHECK(notes[0].value("code", "") == "2.05");
    CHECK(notes[0].value("payload", "") == "fan on");
    CHECK(notes[0].value("etag", "").size() == 16);
    CHECK(notes[0].value("properties", "").find("speed=3") != std::string::npos);
    CHECK(notes[0].value("properties", "").find("%24.mid=node-c2d-1") != std::string::npos);
    const auto settled = events_named(out, "settled");
    REQUIRE(settled.size() == 1);
    CHECK(settled[0].value("code", "") == "2.02");
}

TEST_CASE("a node-coap observer that rejects a C2D message gives the hub Rejected feedback") {
    NodeC2dRig rig;
    Observer obs(rig.devicebound("node-rej"), 6, "reject");
    REQUIRE_MESSAGE(obs.registered(), obs.process.output());
    rig.send(C2dSend("node-c2d-rej", "node-rej", "full"));
    const auto fb = rig.wait_feedback("node-c2d-rej", "Rejected", 15s);
    const auto out = obs.finish();
    INFO(out);
    REQUIRE_MESSAGE(fb, "no Rejected feedback reached the hub");
    const auto settled = events_named(out, "settled");
    REQUIRE(settled.size() == 1);
    CHECK(settled[0].value("code", "") == "2.02");
}

}  // TEST_SUITE
