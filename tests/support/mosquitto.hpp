// A real mosquitto broker for integration tests, standing in for the hub: on a fixed loopback port
// that survives restart(), persisting its sessions to the test's TempDir (stop() saves, kill() may not).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

struct MosquittoOptions {
    bool allow_anonymous = true;
    // username -> password, written with mosquitto_passwd; used with allow_anonymous = false.
    std::vector<std::pair<std::string, std::string>> users;
    std::vector<std::string> extra_config;  // more mosquitto.conf lines
};

class Mosquitto {
public:
    // Writes DIR/mosquitto.conf (and DIR/passwd) and picks a free port; start() runs it.
    explicit Mosquitto(const TempDir& dir, MosquittoOptions options = {});
    ~Mosquitto();
    Mosquitto(const Mosquitto&) = delete;
    Mosquitto& operator=(const Mosquitto&) = delete;

    // Starts the broker and waits until it accepts TCP connections; throws with its output if not.
    void start();
    void stop();     // SIGTERM: mosquitto saves its persistence file before exiting
    void kill();     // SIGKILL: only what the last autosave (every second) wrote survives
    void pause();    // SIGSTOP: connections stay open but nothing is answered
    void resume();   // SIGCONT
    void restart();  // stop() then start(), same port
    bool running() const;

    std::uint16_t port() const noexcept { return port_; }
    std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
    std::string output() const;  // the broker's log so far (current run)

private:
    std::string config_path_;
    std::uint16_t port_ = 0;
    std::unique_ptr<Process> process_;
};

}  // namespace hubgate::test
