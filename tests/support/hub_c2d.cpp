#include "tests/support/hub_c2d.hpp"

#include <doctest/doctest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "gateway/model/url_encoding.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"

namespace hubgate::test {

std::string iso8601_in(std::chrono::seconds from_now) {
    const std::time_t t = std::time(nullptr) + static_cast<std::time_t>(from_now.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string c2d_topic(const C2dSend& s, const std::string& gateway_id) {
    std::string bag = "%24.mid=" + url_encode(s.message_id);
    if (!s.correlation_id.empty()) bag += "&%24.cid=" + url_encode(s.correlation_id);
    if (!s.expiry.empty()) bag += "&%24.exp=" + url_encode(s.expiry);
    if (!s.device.empty()) bag += "&device-id=" + url_encode(s.device);
    if (!s.ack.empty()) bag += "&iothub-ack=" + url_encode(s.ack);
    for (const auto& [k, v] : s.properties) bag += "&" + url_encode(k) + "=" + url_encode(v);
    return "devices/" + gateway_id + "/messages/devicebound/" + bag;
}

void hub_send_c2d(std::uint16_t hub_port, const C2dSend& s, const std::string& gateway_id) {
    const auto r = mosquitto_pub(hub_port, "hub-c2d-sender", std::nullopt,
                                 {"-q", "1", "-t", c2d_topic(s, gateway_id), "-m", s.body});
    REQUIRE_MESSAGE(r.exit_code == 0, "the hub broker did not take " << s.message_id << ": " << r.output);
}

std::vector<Feedback> feedback_in(const HubTraffic& traffic) {
    std::vector<Feedback> out;
    for (const auto& r : traffic.messages) {
        const auto& m = r.message;
        if (m.system.content_type != kFeedbackContentType) continue;
        const auto* type = m.properties.find("message-type");
        CHECK_MESSAGE((type && type->value && *type->value == "feedback"), "feedback without message-type=feedback");
        const auto records = nlohmann::json::parse(m.body, nullptr, false);
        REQUIRE_MESSAGE(records.is_array(), "feedback body is not a JSON array: " << m.body);
        for (const auto& e : records) {
            Feedback f;
            f.original_message_id = e.value("originalMessageId", "");
            f.device_id = e.value("deviceId", "");
            f.status = e.value("statusCode", "");
            f.description = e.value("description", "");
            f.enqueued_time = e.value("enqueuedTimeUtc", "");
            out.push_back(std::move(f));
        }
    }
    return out;
}

std::optional<Feedback> wait_feedback(HubTrafficReader& reader, const std::string& message_id,
                                      const std::string& status, std::chrono::milliseconds timeout) {
    std::optional<Feedback> found;
    eventually(
        [&] {
            for (auto& f : feedback_in(reader.update()))
                if (f.original_message_id == message_id && f.status == status) found = f;
            return found.has_value();
        },
        timeout);
    return found;
}

C2dHub::C2dHub() {
    hub.start();
    listener = std::make_unique<HubListener>(hub.port());
}

void C2dHub::start_gateway(const std::string& extra) {
    gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra, {}, hub.url()), metrics_port);
    wait_ready_and_upstream();
    reader = std::make_unique<HubTrafficReader>(*listener);
}

void C2dHub::wait_ready_and_upstream() {
    REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    REQUIRE_MESSAGE(eventually([&] { return gw->metric("hubgate_upstream_connected") == 1; }, std::chrono::seconds(10)),
                    gw->process().output());
}

double C2dHub::c2d_metric(const std::string& event) {
    return gw->metric("hubgate_c2d_messages_total{event=\"" + event + "\"}");
}

}  // namespace hubgate::test
