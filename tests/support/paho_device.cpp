#include "tests/support/paho_device.hpp"

#include <mqtt/async_client.h>

#include <condition_variable>
#include <ctime>
#include <stdexcept>

#include "gateway/model/sas_token.hpp"

namespace hubgate::test {

struct PahoDevice::Callback : public virtual mqtt::callback {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<ReceivedMessage> messages;

    void message_arrived(mqtt::const_message_ptr msg) override {
        std::lock_guard lock(mu);
        messages.push_back({msg->get_topic(), msg->to_string()});
        cv.notify_all();
    }
};

PahoDevice::PahoDevice(const std::string& uri, const std::string& device_id, std::optional<std::string> password,
                       std::string ca_file)
    : device_id_(device_id), password_(std::move(password)), ca_file_(std::move(ca_file)) {
    client_ = std::make_unique<mqtt::async_client>(uri, device_id);
    callback_ = std::make_unique<Callback>();
    client_->set_callback(*callback_);
}

PahoDevice::~PahoDevice() {
    try {
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
    // The client first: destroying it fails publishes still pending (e.g. after the gateway was
    // killed), and Paho then calls delivery_complete() on the callback, which must still exist.
    client_.reset();
}

int PahoDevice::connect(bool clean_session, int keep_alive_seconds) {
    mqtt::connect_options opts;
    opts.set_mqtt_version(MQTTVERSION_3_1_1);
    opts.set_clean_session(clean_session);
    opts.set_keep_alive_interval(keep_alive_seconds);
    opts.set_connect_timeout(5);
    opts.set_user_name(device_username(device_id_));
    if (password_) opts.set_password(*password_);
    if (!ca_file_.empty()) {
        mqtt::ssl_options ssl;
        ssl.set_trust_store(ca_file_);
        ssl.set_enable_server_cert_auth(true);
        opts.set_ssl(ssl);
    }
    try {
        auto tok = client_->connect(opts);
        tok->wait();
        session_present_ = tok->get_connect_response().is_session_present();
        return 0;
    } catch (const mqtt::exception& e) {
        const int rc = e.get_return_code();
        return rc >= 1 && rc <= 5 ? rc : -1;
    }
}

bool PahoDevice::publish(const std::string& topic, const std::string& payload, int qos, std::chrono::milliseconds timeout) {
    try {
        auto tok = client_->publish(topic, payload.data(), payload.size(), qos, false);
        // Paho keeps a QoS 1 publish pending across a lost connection (for a resend after a
        // reconnect), so its token would only time out: stop waiting once the connection is gone.
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (tok->wait_for(std::chrono::milliseconds(20))) return tok->get_return_code() == 0;
            if (!client_->is_connected()) return tok->wait_for(std::chrono::milliseconds(0)) && tok->get_return_code() == 0;
            if (std::chrono::steady_clock::now() >= deadline) return false;
        }
    } catch (const mqtt::exception&) {
        return false;
    }
}

int PahoDevice::subscribe(const std::string& filter, int qos) {
    try {
        auto tok = client_->subscribe(filter, qos);
        if (!tok->wait_for(std::chrono::seconds(5))) return -1;
        const auto& rsp = tok->get_subscribe_response();
        return rsp.get_reason_codes().empty() ? -1 : static_cast<int>(rsp.get_reason_codes().front());
    } catch (const mqtt::exception& e) {
        return e.get_reason_code() == 0x80 || e.get_return_code() == 0x80 ? 0x80 : -1;
    }
}

bool PahoDevice::connected() const { return client_->is_connected(); }

void PahoDevice::disconnect() {
    try {
        client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception&) {
    }
}

std::optional<ReceivedMessage> PahoDevice::next_message(std::chrono::milliseconds timeout) {
    std::unique_lock lock(callback_->mu);
    if (!callback_->cv.wait_for(lock, timeout, [&] { return !callback_->messages.empty(); })) return std::nullopt;
    auto m = std::move(callback_->messages.front());
    callback_->messages.pop_front();
    return m;
}

std::string device_token(const std::string& id, const std::string& key, long ttl_seconds, const std::string& host) {
    auto t = make_sas_token(host + "/devices/" + id, key, static_cast<std::int64_t>(std::time(nullptr)) + ttl_seconds);
    if (!t) throw std::runtime_error("cannot make SAS token: " + t.error());
    return t.value();
}

std::string device_username(const std::string& id, const std::string& host) {
    return host + "/" + id + "/?api-version=2021-04-12";
}

RunResult mosquitto_pub(std::uint16_t port, const std::string& device_id, const std::optional<std::string>& password,
                        std::vector<std::string> args) {
    std::vector<std::string> argv{"mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(port),
                                  "-i", device_id};
    if (password) {
        argv.insert(argv.end(), {"-u", device_username(device_id), "-P", *password});
    }
    argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
    return run(std::move(argv));
}

RunResult mosquitto_pub_lines(std::uint16_t port, const std::string& device_id,
                              const std::optional<std::string>& password, const std::string& topic,
                              const std::string& lines_file, int qos, std::chrono::milliseconds timeout) {
    // run() gives no stdin: a shell redirects the file, with the arguments passed through "$@"
    // so that nothing in them is ever parsed by the shell.
    std::vector<std::string> argv{"sh", "-c", "f=$1; shift; exec mosquitto_pub \"$@\" < \"$f\"", "sh", lines_file,
                                  "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(port), "-i", device_id};
    if (password) argv.insert(argv.end(), {"-u", device_username(device_id), "-P", *password});
    argv.insert(argv.end(), {"-q", std::to_string(qos), "-t", topic, "-l"});
    return run(std::move(argv), timeout);
}

}  // namespace hubgate::test
