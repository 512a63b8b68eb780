#include "tests/support/hub_twin.hpp"

#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace hubgate::test {

struct HubTwin::State {
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::vector<std::string> patches;
    std::size_t gets = 0;
    std::optional<std::string> desired;
    nlohmann::json reported = nlohmann::json::object();
    std::int64_t reported_version = 1;
    std::string get_filter, patch_filter, answer_prefix;
    std::unique_ptr<mqtt::async_client> client;
    std::mutex life_mu;  // no subscribe or answer once closing
    bool closing = false;
};

namespace {

std::string unique_client_id() {
    static std::atomic<unsigned> counter{0};
    return "hub-twin-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

HubTwin::HubTwin(std::uint16_t port, std::string gateway_id) : state_(std::make_shared<State>()) {
    auto& s = *state_;
    const std::string base = "devices/" + gateway_id + "/$iothub/twin/";
    s.get_filter = base + "GET/#";
    s.patch_filter = base + "PATCH/properties/reported/#";
    s.answer_prefix = base + "res/200/?$rid=";
    s.client = std::make_unique<mqtt::async_client>("tcp://127.0.0.1:" + std::to_string(port), unique_client_id(),
                                                    nullptr);
    auto* client = s.client.get();
    client->set_message_callback([st = state_.get(), client](mqtt::const_message_ptr msg) {
        const std::string& topic = msg->get_topic();
        if (topic.rfind(st->get_filter.substr(0, st->get_filter.size() - 1), 0) == 0) {
            std::optional<std::string> answer;
            {
                std::lock_guard lock(st->mu);
                ++st->gets;
                if (st->desired) {
                    auto reported = st->reported;
                    reported["$version"] = st->reported_version;
                    answer = R"({"desired":)" + *st->desired + R"(,"reported":)" + reported.dump() + "}";
                }
                st->cv.notify_all();
            }
            const auto at = topic.find("$rid=");
            if (!answer || at == std::string::npos) return;
            const auto end = topic.find('&', at);
            const std::string rid = topic.substr(at + 5, end == std::string::npos ? end : end - at - 5);
            std::lock_guard life(st->life_mu);
            if (st->closing) return;
            try {  // not waited for: waiting inside a Paho callback would deadlock
                client->publish(st->answer_prefix + rid, *answer, 0, false);
            } catch (const mqtt::exception&) {
            }
            return;
        }
        std::lock_guard lock(st->mu);
        st->patches.push_back(msg->get_payload_str());
        const auto patch = nlohmann::json::parse(st->patches.back(), nullptr, false);
        if (patch.is_object()) {
            st->reported.merge_patch(patch);
            ++st->reported_version;
        }
        st->cv.notify_all();
    });
    client->set_connected_handler([st = state_.get(), client](const std::string&) {
        std::lock_guard lock(st->life_mu);
        if (st->closing) return;
        try {
            client->subscribe(st->get_filter, 1);
            client->subscribe(st->patch_filter, 1);
        } catch (const mqtt::exception&) {
        }
    });
    mqtt::connect_options opts;
    opts.set_mqtt_version(MQTTVERSION_3_1_1);
    opts.set_clean_session(false);
    opts.set_keep_alive_interval(30);
    opts.set_connect_timeout(5);
    opts.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(2));
    try {
        client->connect(opts)->wait();
        client->subscribe(s.get_filter, 1)->wait();
        client->subscribe(s.patch_filter, 1)->wait();
    } catch (const mqtt::exception& e) {
        throw std::runtime_error(std::string("hub twin cannot subscribe: ") + e.what());
    }
}

HubTwin::~HubTwin() {
    {
        std::lock_guard lock(state_->life_mu);
        state_->closing = true;
    }
    try {
        if (state_->client->is_connected()) state_->client->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
    state_->client.reset();
}

void HubTwin::answer_gets(const std::string& desired) {
    std::lock_guard lock(state_->mu);
    state_->desired = desired;
}

void HubTwin::stop_answering() {
    std::lock_guard lock(state_->mu);
    state_->desired.reset();
}

std::string HubTwin::reported() const {
    std::lock_guard lock(state_->mu);
    auto r = state_->reported;
    r["$version"] = state_->reported_version;
    return r.dump();
}

void HubTwin::reset_reported() {
    std::lock_guard lock(state_->mu);
    state_->reported = nlohmann::json::object();
    state_->reported_version = 1;
}

std::vector<std::string> HubTwin::patches() const {
    std::lock_guard lock(state_->mu);
    return state_->patches;
}

std::size_t HubTwin::gets() const {
    std::lock_guard lock(state_->mu);
    return state_->gets;
}

bool HubTwin::wait_for_patches(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mu);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->patches.size() >= n; });
}

}  // namespace hubgate::test
