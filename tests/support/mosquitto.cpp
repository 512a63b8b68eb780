#include "tests/support/mosquitto.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>

namespace hubgate::test {

Mosquitto::Mosquitto(const TempDir& dir, MosquittoOptions options) : port_(free_tcp_port()) {
    std::string conf;
    conf += "listener " + std::to_string(port_) + " 127.0.0.1\n";
    conf += std::string("allow_anonymous ") + (options.allow_anonymous ? "true" : "false") + "\n";
    conf += "persistence true\n";
    conf += "persistence_location " + dir.path() + "/\n";
    // The default autosave is every 30 minutes: a SIGKILLed broker would forget every session.
    conf += "autosave_interval 1\n";
    // Defaults drop QoS 1 messages beyond 1000 queued per client and limit in-flight to 20.
    conf += "max_queued_messages 0\n";
    conf += "max_inflight_messages 0\n";
    conf += "log_dest stdout\n";
    conf += "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
    conf += "connection_messages true\n";
    // As root, mosquitto would switch to user `mosquitto`, which cannot write the TempDir.
    if (geteuid() == 0) conf += "user root\n";
    if (!options.users.empty()) {
        const std::string passwd = dir.write("passwd", "");
        for (const auto& [user, password] : options.users) {
            const auto r = run({"mosquitto_passwd", "-b", passwd, user, password});
            if (r.exit_code != 0) throw std::runtime_error("mosquitto_passwd failed: " + r.output);
        }
        conf += "password_file " + passwd + "\n";
    }
    for (const auto& line : options.extra_config) conf += line + "\n";
    config_path_ = dir.write("mosquitto.conf", conf);
}

Mosquitto::~Mosquitto() {
    if (process_ && process_->running()) {
        process_->signal(SIGCONT);
        process_->signal(SIGKILL);
        process_->wait(std::chrono::seconds(5));
    }
}

void Mosquitto::start() {
    if (running()) return;
    process_ = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", config_path_});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // The old listening socket may linger for a moment after a restart: poll until this run is up.
    while (std::chrono::steady_clock::now() < deadline) {
        if (!process_->running()) throw std::runtime_error("mosquitto exited at start:\n" + process_->output());
        if (wait_for_tcp(port_, std::chrono::milliseconds(100))) return;
    }
    throw std::runtime_error("mosquitto did not open port " + std::to_string(port_) + ":\n" + process_->output());
}

void Mosquitto::stop() {
    if (!running()) return;
    process_->signal(SIGCONT);  // a paused broker cannot handle SIGTERM
    process_->signal(SIGTERM);
    if (!process_->wait(std::chrono::seconds(10))) {
        process_->signal(SIGKILL);
        process_->wait(std::chrono::seconds(5));
    }
}

void Mosquitto::kill() {
    if (!running()) return;
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(5));
}

void Mosquitto::pause() {
    if (running()) process_->signal(SIGSTOP);
}

void Mosquitto::resume() {
    if (running()) process_->signal(SIGCONT);
}

void Mosquitto::restart() {
    stop();
    start();
}

bool Mosquitto::running() const { return process_ && process_->running(); }

std::string Mosquitto::output() const { return process_ ? process_->output() : std::string(); }

}  // namespace hubgate::test
