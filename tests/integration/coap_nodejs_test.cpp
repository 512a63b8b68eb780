// npm's `coap` (node-coap) as a second CoAP device implementation against the real `hubgate run`:
// telemetry (JSON with query properties, a block-wise upload) into the store, and C2D through
// Observe with a hub (mosquitto) sending the commands and receiving the feedback.
// The client is tests/node/coap_client.js; `npm ci --prefix tests/node` installs node-coap.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_listener.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/mosquitto.hpp"
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

// A gateway with a plain `coap` listener (auth none, module "node"); with a hub when `with_hub`.
struct NodeRig {
    explicit NodeRig(bool with_hub) {
        std::string extra = listener_toml("coap", coap_port, "none", "node");
        extra += "[c2d]\nfeedback_max_delay_ms = 200\n\n";
        if (with_hub) {
            hub.start();
            listener = std::make_unique<HubListener>(hub.port());
            gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra, {}, hub.url()), metrics_port);
        } else {
            gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra), metrics_port);
        }
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
        if (with_hub) {
            REQUIRE_MESSAGE(eventually([&] { return gw->metric("hubgate_upstream_connected") == 1; }, 10s),
                            gw->process().output());
            reader = std::make_unique<HubTrafficReader>(*listener);
        }
    }
    std::string url(const std::string& path) const { return "coap://127.0.0.1:" + std::to_string(coap_port) + path; }
    // SIGKILL, then what the store holds.
    std::vector<HubMessage> stored_after_kill() {
        gw->kill();
        return stored_messages(dir.file("hubgate.db"));
    }

    TempDir dir;
    Mosquitto hub{dir};
    std::unique_ptr<HubListener> listener;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t coap_port = free_udp_port();
    std::unique_ptr<Gateway> gw;
    std::unique_ptr<HubTrafficReader> reader;
};

// node-coap observing `device`'s devicebound for `seconds`, settling what it gets with `how`.
// Started in the background; the hub sends once the registration was answered.
struct Observer {
    Observer(const NodeRig& rig, const std::string& device, int seconds, const std::string& how)
        : process(node_client({"observe", rig.url("/devices/" + device + "/messages/devicebound"),
                               std::to_string(seconds), how})) {}
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
    NodeRig rig(false);
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
    NodeRig rig(false);
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
    NodeRig rig(true);
    Observer obs(rig, "node-obs", 6, "complete");
    REQUIRE_MESSAGE(obs.registered(), obs.process.output());
    hub_send_c2d(rig.hub.port(), C2dSend("node-c2d-1", "node-obs", "full").with_body("fan on").with_property("speed", "3"));
    const auto fb = wait_feedback(*rig.reader, "node-c2d-1", "Success", 15s);
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
    NodeRig rig(true);
    Observer obs(rig, "node-rej", 6, "reject");
    REQUIRE_MESSAGE(obs.registered(), obs.process.output());
    hub_send_c2d(rig.hub.port(), C2dSend("node-c2d-rej", "node-rej", "full"));
    const auto fb = wait_feedback(*rig.reader, "node-c2d-rej", "Rejected", 15s);
    const auto out = obs.finish();
    INFO(out);
    REQUIRE_MESSAGE(fb, "no Rejected feedback reached the hub");
    const auto settled = events_named(out, "settled");
    REQUIRE(settled.size() == 1);
    CHECK(settled[0].value("code", "") == "2.02");
}

}  // TEST_SUITE
