#include "tests/support/hub_listener.hpp"

#include <mqtt/async_client.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>

namespace hubgate::test {

struct HubListener::State {
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::vector<ReceivedMessage> messages;
    // Guards the reconnect handler against the destructor: no subscribe once closing is set.
    std::mutex life_mu;
    bool closing = false;
};

namespace {

std::string unique_client_id() {
    static std::atomic<unsigned> counter{0};
    return "hub-listener-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

HubListener::HubListener(std::uint16_t port, std::string filter)
    : filter_(std::move(filter)), state_(std::make_shared<State>()) {
    client_ = std::make_unique<mqtt::async_client>("tcp://127.0.0.1:" + std::to_string(port), unique_client_id(),
                                                   nullptr);
    client_->set_message_callback([state = state_](mqtt::const_message_ptr msg) {
        std::lock_guard lock(state->mu);
        state->messages.push_back({msg->get_topic(), msg->get_payload_str()});
        state->cv.notify_all();
    });
    // After Paho's automatic reconnect: subscribe again in case the broker lost the session (a
    // SIGKILL before its autosave). Asynchronous: waiting inside a Paho callback would deadlock.
    client_->set_connected_handler([this, state = state_, client = client_.get()](const std::string&) {
        std::lock_guard lock(state->life_mu);
        if (state->closing) return;
        try {
            client->subscribe(filter_, 1);
        } catch (const mqtt::exception&) {
        }
    });

    mqtt::connect_options opts;
    opts.set_mqtt_version(MQTTVERSION_3_1_1);
    opts.set_clean_session(false);
    opts.set_keep_alive_interval(30);
    opts.set_connect_timeout(5);
    opts.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(2));  // whole seconds in Paho
    try {
        client_->connect(opts)->wait();
        // The connected handler subscribes too; this one is waited for so the caller can publish next.
        client_->subscribe(filter_, 1)->wait();
    } catch (const mqtt::exception& e) {
        throw std::runtime_error(std::string("hub listener cannot subscribe: ") + e.what());
    }
}

HubListener::~HubListener() {
    {
        std::lock_guard lock(state_->life_mu);
        state_->closing = true;
    }
    try {
        // Stop Paho's reconnect loop before the client (and the handler's `this`) goes away.
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
    client_.reset();
}

std::size_t HubListener::size() const {
    std::lock_guard lock(state_->mu);
    return state_->messages.size();
}

bool HubListener::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mu);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->messages.size() >= n; });
}

std::vector<ReceivedMessage> HubListener::messages() const {
    std::lock_guard lock(state_->mu);
    return state_->messages;
}

std::vector<ReceivedMessage> HubListener::messages_from(std::size_t first) const {
    std::lock_guard lock(state_->mu);
    if (first >= state_->messages.size()) return {};
    return {state_->messages.begin() + static_cast<std::ptrdiff_t>(first), state_->messages.end()};
}

}  // namespace hubgate::test
