// The translation integration tests' shared pieces: real payloads from tests/data/ (each as its
// device family or standard documents it; tests/data/README.md cites the sources), the [[rule]]
// tables of config/examples/ as a colleague wrote them, and reading translated messages at the hub.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "gateway/model/hub_message.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_messages.hpp"

namespace hubgate::test {

// tests/data/<relative>, e.g. "tasmota/tele_SENSOR_ds18b20.json".
inline std::string corpus_path(const std::string& relative) { return HUBGATE_SOURCE_DIR "/tests/data/" + relative; }

inline std::string read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot read " << path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// The payload's bytes as stored.
inline std::string corpus(const std::string& relative) { return read_whole_file(corpus_path(relative)); }

// The [[rule]] tables of config/examples/<name>.toml as written (from its first [[rule]] to the end;
// every example keeps its rules last), to append to a test's config. Their `listeners` name the
// example's listener ("lan", "lan-coap"...), which the test's own listener must then be named.
inline std::string example_rules(const std::string& name) {
    const std::string text = read_whole_file(HUBGATE_SOURCE_DIR "/config/examples/" + name + ".toml");
    const auto at = text.find("\n[[rule]]");
    REQUIRE_MESSAGE(at != std::string::npos, "config/examples/" << name << ".toml has no [[rule]]");
    return text.substr(at + 1) + "\n";
}

// Application properties as "name=value, ..." in their order (value-less ones as "name"), so a
// failed comparison shows every property.
inline std::string properties_text(const HubMessage& m) {
    std::string out;
    for (const auto& p : m.properties) {
        if (!out.empty()) out += ", ";
        out += p.name;
        if (p.value) out += "=" + *p.value;
    }
    return out;
}

// The value of one application property ("(absent)" when the message has none by that name).
inline std::string property(const HubMessage& m, const std::string& name) {
    const auto* p = m.properties.find(name);
    if (!p) return "(absent)";
    return p->value.value_or("(no value)");
}

// Telemetry the hub received so far (C2D feedback left out), in arrival order.
inline std::vector<HubMessage> hub_telemetry(HubTrafficReader& reader) {
    std::vector<HubMessage> out;
    const HubTraffic& t = reader.update();
    for (const auto& r : t.messages)
        if (r.message.system.content_type != kFeedbackContentType) out.push_back(r.message);
    return out;
}

// Polls the hub until a telemetry message that `match` accepts arrived; returns the first such.
inline std::optional<HubMessage> wait_hub_message(HubTrafficReader& reader,
                                                  const std::function<bool(const HubMessage&)>& match,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::optional<HubMessage> found;
    eventually(
        [&] {
            for (auto& m : hub_telemetry(reader))
                if (match(m)) {
                    found = std::move(m);
                    return true;
                }
            return false;
        },
        timeout);
    return found;
}

// The same for the first message from `device_id`.
inline std::optional<HubMessage> wait_from_device(HubTrafficReader& reader, const std::string& device_id,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait_hub_message(reader, [&](const HubMessage& m) { return m.device_id == device_id; }, timeout);
}

}  // namespace hubgate::test
