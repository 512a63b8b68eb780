#include "tests/support/hub_messages.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "gateway/model/crypto.hpp"
#include "gateway/model/property_bag.hpp"

namespace hubgate::test {

namespace {

// Written out here rather than taken from the relay's headers: the tests check the relay against
// docs/upstream-format.md, not against itself.
constexpr std::string_view kBatchContentType = "application/vnd.microsoft.iothub.json";
constexpr std::string_view kEventsMarker = "/messages/events/";

struct SplitTopic {
    std::string gateway_id;
    PropertyBag bag;
};

SplitTopic split_topic(const std::string& topic) {
    constexpr std::string_view prefix = "devices/";
    const auto events = topic.find(kEventsMarker);
    if (topic.rfind(prefix, 0) != 0 || events == std::string::npos)
        throw std::runtime_error("not a D2C events topic: " + topic);
    SplitTopic out;
    out.gateway_id = topic.substr(prefix.size(), events - prefix.size());
    auto bag = parse_property_bag(std::string_view(topic).substr(events + kEventsMarker.size()));
    if (!bag) throw std::runtime_error("bad property bag in " + topic + ": " + bag.error());
    out.bag = std::move(bag.value());
    return out;
}

bool is_system_key(const std::string& key) { return key.rfind("$.", 0) == 0; }

std::size_t bag_hub_size(const PropertyBag& bag) {
    std::size_t size = 0;
    for (const auto& e : bag) {
        // System properties count their value only; application properties name and value.
        if (!is_system_key(e.key)) size += e.key.size();
        if (e.value) size += e.value->size();
    }
    return size;
}

// systemProperties member names (docs/upstream-format.md) -> the message's fields.
std::string* system_member(SystemProperties& s, const std::string& name) {
    if (name == "messageId") return &s.message_id;
    if (name == "correlationId") return &s.correlation_id;
    if (name == "userId") return &s.user_id;
    if (name == "contentType") return &s.content_type;
    if (name == "contentEncoding") return &s.content_encoding;
    if (name == "creationTimeUtc") return &s.creation_time;
    if (name == "absoluteExpiryTimeUtc") return &s.absolute_expiry_time;
    return nullptr;
}

HubMessage decode_element(const nlohmann::ordered_json& e) {
    HubMessage m;
    m.device_id = e.at("deviceId").get<std::string>();
    const auto& module = e.at("moduleId");
    if (!module.is_null()) m.module_id = module.get<std::string>();
    for (const auto& [name, value] : e.at("systemProperties").items()) {
        std::string* field = system_member(m.system, name);
        if (!field) throw std::runtime_error("unknown systemProperties member " + name);
        *field = value.get<std::string>();
    }
    for (const auto& [name, value] : e.at("properties").items()) {
        if (value.is_null()) m.properties.set(name, std::nullopt);
        else m.properties.set(name, value.get<std::string>());
    }
    const auto body = e.at("body").get<std::string>();
    if (e.at("base64Encoded").get<bool>()) {
        auto bytes = base64_decode(body);
        if (!bytes) throw std::runtime_error("body is not base64: " + bytes.error());
        m.body = std::move(bytes.value());
    } else {
        m.body = body;
    }
    return m;
}

HubMessage decode_unbatched(const PropertyBag& bag, const std::string& payload) {
    HubMessage m;
    m.body = payload;
    for (const auto& e : bag) {
        if (is_system_key(e.key)) {
            auto field = system_property_for_key(e.key);
            if (!field) throw std::runtime_error("unknown system property " + e.key);
            m.system.*field = e.value.value_or("");
        } else if (e.key == "device-id") {
            m.device_id = e.value.value_or("");
        } else if (e.key == "module-id") {
            m.module_id = e.value.value_or("");
        } else {
            m.properties.set(e.key, e.value);
        }
    }
    return m;
}

bool is_batch(const PropertyBag& bag) {
    for (const auto& e : bag)
        if (e.key == "$.ct") return e.value && *e.value == kBatchContentType;
    return false;
}

}  // namespace

std::size_t publish_hub_size(const ReceivedMessage& publish) {
    return publish.payload.size() + bag_hub_size(split_topic(publish.topic).bag);
}

HubTraffic decode_hub_traffic(const std::vector<ReceivedMessage>& received) {
    HubTraffic out;
    append_hub_traffic(out, received);
    return out;
}

void append_hub_traffic(HubTraffic& out, const std::vector<ReceivedMessage>& more) {
    for (const auto& r : more) {
        const std::size_t index = out.publishes.size();
        UpstreamPublish p;
        try {
            auto topic = split_topic(r.topic);
            p.gateway_id = topic.gateway_id;
            p.hub_size = r.payload.size() + bag_hub_size(topic.bag);
            p.batch = is_batch(topic.bag);
            if (p.batch) {
                const auto array = nlohmann::ordered_json::parse(r.payload);
                if (!array.is_array() || array.empty()) throw std::runtime_error("batch body is not a non-empty array");
                for (const auto& e : array) out.messages.push_back({decode_element(e), index});
                p.messages = array.size();
            } else {
                out.messages.push_back({decode_unbatched(topic.bag, r.payload), index});
                p.messages = 1;
            }
        } catch (const std::exception& e) {
            out.errors.push_back("publish #" + std::to_string(index) + " on " + r.topic.substr(0, 200) + ": " + e.what());
        }
        out.publishes.push_back(std::move(p));
    }
}

std::map<std::string, std::size_t> count_arrivals(const HubTraffic& traffic,
                                                  const std::function<std::string(const HubMessage&)>& key_of) {
    std::map<std::string, std::size_t> counts;
    for (const auto& r : traffic.messages) ++counts[key_of(r.message)];
    return counts;
}

const HubTraffic& HubTrafficReader::update() {
    append_hub_traffic(traffic_, listener_.messages_from(traffic_.publishes.size()));
    return traffic_;
}

bool HubTrafficReader::wait_for_messages(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (update().messages.size() >= n) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        // Wakes on the next publish, or re-checks after a while at the latest.
        listener_.wait_for(traffic_.publishes.size() + 1,
                           std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                                    std::chrono::milliseconds(200)));
    }
}

RelayRig::RelayRig(bool batch, const std::vector<std::string>& device_ids, const std::string& key) {
    hub.start();
    // Subscribed before anything is relayed: its session then keeps what arrives while it is away.
    listener = std::make_unique<HubListener>(hub.port());
    std::string extra = listener_toml("mqtt", device_port, "sas", "edge");
    for (const auto& id : device_ids) extra += device_toml(id, key);
    gw = std::make_unique<Gateway>(
        dir, minimal_config(dir, metrics_port, extra, {}, hub.url(), batch ? "batch = true\n" : "batch = false\n"),
        metrics_port);
    if (!gw->wait_ready()) throw std::runtime_error("the gateway did not start:\n" + gw->process().output());
}

std::string RelayRig::publish_lines(const std::vector<std::string>& device_ids, int per_device, const std::string& key) {
    std::vector<std::string> files;
    for (const auto& id : device_ids) {
        std::string lines;
        for (int i = 0; i < per_device; ++i) {
            std::string line = body_key(id, i) + ":{\"t\":21.5,\"pad\":\"";
            line.append(line.size() < 198 ? 198 - line.size() : 0, 'x');
            lines += line + "\"}\n";
        }
        files.push_back(dir.write("lines-" + id + ".txt", lines));
    }
    std::vector<RunResult> results(device_ids.size());
    std::vector<std::thread> clients;
    for (std::size_t d = 0; d < device_ids.size(); ++d)
        clients.emplace_back([&, d] {
            const auto& id = device_ids[d];
            results[d] = mosquitto_pub_lines(device_port, id, device_token(id, key),
                                             "devices/" + id + "/messages/events/kind=telemetry", files[d]);
        });
    for (auto& t : clients) t.join();
    std::string failures;
    for (std::size_t d = 0; d < results.size(); ++d)
        if (results[d].exit_code != 0)
            failures += device_ids[d] + ": exit " + std::to_string(results[d].exit_code) + ": " + results[d].output + "\n";
    return failures;
}

std::string body_key(const HubMessage& m) { return m.body.substr(0, m.body.find(':')); }

}  // namespace hubgate::test
