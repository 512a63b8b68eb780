// Child processes for tests: start a real peer (mosquitto, hubgate, a client tool), talk to it,
// kill it (SIGKILL for durability tests), collect its output. One place, reused by every test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hubgate::test {

// A running child. stdout and stderr go to one file (read with output()). Destructor SIGKILLs.
class Process {
public:
    // argv[0] is looked up in PATH when it has no '/'. Throws std::runtime_error if it cannot start.
    explicit Process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    void signal(int sig);
    // Waits up to `timeout` for exit. Returns the exit code (128+N when killed by signal N).
    std::optional<int> wait(std::chrono::milliseconds timeout);
    bool running();
    std::string output() const;  // everything written so far

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string log_path_;
};

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout + stderr
};
// Runs a command to completion (killed after `timeout`).
RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A TCP port on 127.0.0.1 that was free a moment ago (bound then released).
std::uint16_t free_tcp_port();
// The same for UDP (CoAP listeners).
std::uint16_t free_udp_port();

// Polls until connect() to 127.0.0.1:port succeeds or the timeout passes.
bool wait_for_tcp(std::uint16_t port, std::chrono::milliseconds timeout);

// Minimal HTTP/1.1 GET over loopback: returns status code and body ("" and 0 on failure).
struct HttpResponse {
    int status = 0;
    std::string body;
};
HttpResponse http_get(std::uint16_t port, const std::string& target);

}  // namespace hubgate::test
