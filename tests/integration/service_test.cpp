// `hubgate run` as systemd runs it: READY=1 and WATCHDOG=1 on NOTIFY_SOCKET (pings stop when the
// store writer wedges), and start-up bind/listen failures that name what failed and why.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gateway.hpp"

using namespace hubgate::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// The unix datagram socket systemd would listen on (NOTIFY_SOCKET): a path, or "@name" for a name
// in the abstract namespace (what NOTIFY_SOCKET holds for a service in a container, for example).
class NotifySocket {
public:
    explicit NotifySocket(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof a.sun_path);
        path_.copy(a.sun_path, path_.size());
        socklen_t len = sizeof a;
        if (path_[0] == '@') {
            a.sun_path[0] = '\0';
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
        }
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0);
    }
    ~NotifySocket() { ::close(fd_); }
    const std::string& path() const { return path_; }

    struct Datagram {
        Clock::time_point at;
        std::string text;
    };
    // Everything that arrives until `until`, or until (and including) a datagram equal to `stop_at`.
    std::vector<Datagram> read_until(Clock::time_point until, const std::string& stop_at = {}) {
        std::vector<Datagram> out;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
            if (left <= 0) return out;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char buf[512];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) out.push_back({Clock::now(), std::string(buf, static_cast<std::size_t>(n))});
            if (!stop_at.empty() && !out.empty() && out.back().text == stop_at) return out;
        }
    }

private:
    std::string path_;
    int fd_ = -1;
};

std::size_t count(const std::vector<NotifySocket::Datagram>& ds, const std::string& text) {
    std::size_t n = 0;
    for (const auto& d : ds) n += d.text == text;
    return n;
}

// A minimal config in `dir` (metrics on a free port, `extra` appended); returns its path.
std::string write_config(const TempDir& dir, const std::string& extra = {}) {
    return dir.write("hubgate.toml", minimal_config(dir, free_tcp_port(), extra));
}

// Waits for the gateway's READY=1 (exactly one); returns the datagrams up to it.
std::vector<NotifySocket::Datagram> wait_ready(NotifySocket& notify, const Process& gw) {
    auto ready = notify.read_until(Clock::now() + 20s, "READY=1");
    INFO(gw.output());
    REQUIRE(count(ready, "READY=1") == 1);
    return ready;
}

// A socket holding 127.0.0.1:port (TCP: listening; UDP: bound, without SO_REUSEADDR).
struct Occupied {
    explicit Occupied(int type) {
        fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        if (type == SOCK_STREAM) REQUIRE(::listen(fd, 4) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~Occupied() { ::close(fd); }
    int fd = -1;
    std::uint16_t port = 0;
};

// Runs the gateway on `config` to its exit; returns the exit code and the log.
RunResult run_gateway(const TempDir& dir, const std::string& config, std::vector<std::string> launcher = {}) {
    const auto path = dir.write("hubgate.toml", config);
    launcher.insert(launcher.end(), {HUBGATE_BINARY, "run", "-c", path});
    return run(launcher, 20s);
}

}  // namespace

TEST_CASE("under a watchdog the gateway sends READY=1, then WATCHDOG=1 every WATCHDOG_USEC/2") {
    TempDir dir;
    NotifySocket notify(dir.file("notify.sock"));
    const auto path = write_config(dir);
    Process gw({HUBGATE_BINARY, "run", "-c", path}, {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000"});
    const auto ready = wait_ready(notify, gw);
    INFO(gw.output());
    // 200 ms period: about 10 pings in the 2 s after READY; allow for a slow machine.
    const auto got = notify.read_until(ready.back().at + 2s);
    CHECK(count(got, "WATCHDOG=1") >= 5);
    CHECK(count(got, "WATCHDOG=1") <= 12);
    CHECK(gw.output().find("watchdog: pinging systemd every 200 ms") != std::string::npos);
}

TEST_CASE("without WATCHDOG_USEC the gateway sends READY=1 and no pings") {
    TempDir dir;
    NotifySocket notify(dir.file("notify.sock"));
    const auto path = write_config(dir);
    Process gw({HUBGATE_BINARY, "run", "-c", path}, {"NOTIFY_SOCKET=" + notify.path()});
    wait_ready(notify, gw);
    INFO(gw.output());
    CHECK(count(notify.read_until(Clock::now() + 1s), "WATCHDOG=1") == 0);
}

TEST_CASE("NOTIFY_SOCKET in the abstract namespace (@name) gets READY=1 and the pings") {
    TempDir dir;
    NotifySocket notify("@hubgate-service-test-" + std::to_string(::getpid()));
    const auto path = write_config(dir);
    Process gw({HUBGATE_BINARY, "run", "-c", path}, {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000"});
    const auto ready = wait_ready(notify, gw);
    INFO(gw.output());
    CHECK(count(notify.read_until(ready.back().at + 1s), "WATCHDOG=1") >= 2);
}

TEST_CASE("a WATCHDOG_PID naming another process: READY=1 but no pings (the watchdog is not ours)") {
    TempDir dir;
    NotifySocket notify(dir.file("notify.sock"));
    const auto path = write_config(dir);
    Process gw({HUBGATE_BINARY, "run", "-c", path},
               {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000", "WATCHDOG_PID=" + std::to_string(::getpid())});
    wait_ready(notify, gw);
    INFO(gw.output());
    CHECK(count(notify.read_until(Clock::now() + 1s), "WATCHDOG=1") == 0);
    CHECK(gw.output().find("watchdog: pinging") == std::string::npos);
}

// The libraries mapped into a running gateway's address space (/proc/PID/maps).
static std::string mapped_files(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("libavahi-client is loaded only when a listener is advertised, libsystemd never") {
    // Discovery dlopen's libavahi-client (and with it libdbus and libsystemd) when a listener is to
    // be advertised; the notify protocol is the gateway's own. Together 1.2 MB of idle RSS.
    for (const bool lan : {false, true}) {
        CAPTURE(lan);
        TempDir dir;
        NotifySocket notify(dir.file("notify.sock"));
        const std::string listener = "[[listener]]\nprotocol = \"mqtt\"\nauth = \"none\"\nbind = \"" +
                                     std::string(lan ? "0.0.0.0:" : "127.0.0.1:") + std::to_string(free_tcp_port()) + "\"\n";
        Process gw({HUBGATE_BINARY, "run", "-c", write_config(dir, listener)}, {"NOTIFY_SOCKET=" + notify.path()});
        wait_ready(notify, gw);
        const auto maps = mapped_files(gw.pid());
        INFO(gw.output());
        REQUIRE(maps.find("libc.so") != std::string::npos);  // the file is what we think it is
        CHECK((maps.find("libavahi-client") != std::string::npos) == lan);
        if (!lan) {
            CHECK(maps.find("libdbus-1") == std::string::npos);
            CHECK(maps.find("libsystemd") == std::string::npos);
        }
    }
}

#ifdef HUBGATE_TEST_HOOKS_BUILT
TEST_CASE("a wedged store writer stops the watchdog pings while the event loop runs on") {
    TempDir dir;
    NotifySocket notify(dir.file("notify.sock"));
    const auto port = free_tcp_port();  // metrics: /healthz answers while the writer is wedged
    const auto path = dir.write("hubgate.toml", minimal_config(dir, port));
    Process gw({HUBGATE_BINARY, "run", "-c", path},
               {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000", "HUBGATE_TEST_WEDGE_STORE_AFTER_MS=1000"});
    const auto ready = wait_ready(notify, gw);
    INFO(gw.output());
    const auto ready_at = ready.back().at;
    const auto got = notify.read_until(ready_at + 4s);
    CHECK(count(got, "WATCHDOG=1") >= 2);  // before the wedge, 1 s after READY
    // The wedge comes 1 s after READY; the last ping at most 200 ms (the staleness bound) plus one
    // period later. None in the remaining 2 s or more: systemd would kill the service after WatchdogSec.
    Clock::time_point last{};
    for (const auto& d : got)
        if (d.text == "WATCHDOG=1") last = d.at;
    CHECK(last < ready_at + 2s);
    CHECK(gw.running());  // the loop itself is alive: only the writer is stuck
    CHECK(http_get(port, "/healthz").status != 0);
    CHECK(gw.output().find("watchdog: the store writer has made no progress") != std::string::npos);
    gw.signal(SIGKILL);  // a wedged writer cannot finish a graceful stop
}
#endif

TEST_CASE("metrics port taken: the gateway exits 1 naming the address, the step and the cause") {
    TempDir dir;
    Occupied busy(SOCK_STREAM);
    const auto r = run_gateway(dir, minimal_config(dir, busy.port));
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find("cannot listen for metrics on 127.0.0.1:" + std::to_string(busy.port) +
                                ": bind: Address already in use") != std::string::npos,
                  r.output);
    CHECK(r.output.find("Success") == std::string::npos);
}

TEST_CASE("MQTT port taken: the gateway exits 1 naming the listener, the step and the cause") {
    TempDir dir;
    Occupied busy(SOCK_STREAM);
    const auto r = run_gateway(dir, minimal_config(dir, free_tcp_port(), listener_toml("mqtt", busy.port)));
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find("cannot listen for mqtt on 127.0.0.1:" + std::to_string(busy.port) +
                                ": bind: Address already in use") != std::string::npos,
                  r.output);
}

TEST_CASE("CoAP port taken: the gateway exits 1 naming the listener, the step and the cause") {
    TempDir dir;
    Occupied busy(SOCK_DGRAM);
    const auto r = run_gateway(dir, minimal_config(dir, free_tcp_port(), listener_toml("coap", busy.port, "none")));
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find("cannot listen for coap on 127.0.0.1:" + std::to_string(busy.port) +
                                ": bind: Address already in use") != std::string::npos,
                  r.output);
}

TEST_CASE("a privileged port without the privilege: the message says permission denied") {
    // Needs an unprivileged run: as root the gateway is started as nobody through setpriv.
    std::vector<std::string> launcher;
    if (::geteuid() == 0) {
        if (::access("/usr/bin/setpriv", X_OK) != 0) return;
        launcher = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    }
    TempDir dir;
    ::chmod(dir.path().c_str(), 0777);  // the store is created by nobody
    // Port 1 on MQTT, then on metrics (with no listener): both need CAP_NET_BIND_SERVICE.
    auto r = run_gateway(dir, minimal_config(dir, free_tcp_port(), listener_toml("mqtt", 1)), launcher);
    if (r.output.find("cannot open store") != std::string::npos) return;  // nobody cannot reach the binary's dir
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find("cannot listen for mqtt on 127.0.0.1:1: bind: Permission denied") != std::string::npos,
                  r.output);
    r = run_gateway(dir, minimal_config(dir, 1), launcher);
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find("cannot listen for metrics on 127.0.0.1:1: bind: Permission denied") != std::string::npos,
                  r.output);
}
