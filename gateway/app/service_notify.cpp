#include "gateway/app/service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hubgate::app {

namespace {

bool parse_u64(const char* s, std::uint64_t& out) {
    if (!s || !*s) return false;
    const char* end = s + std::strlen(s);
    auto [p, ec] = std::from_chars(s, end, out);
    return ec == std::errc() && p == end;
}

}  // namespace

bool notify_service_manager(std::string_view state) {
    const char* where = std::getenv("NOTIFY_SOCKET");
    if (!where || (where[0] != '/' && where[0] != '@')) return false;  // unset, or a kind systemd 252 never sets
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(where);
    if (len >= sizeof a.sun_path) return false;
    std::memcpy(a.sun_path, where, len);
    if (a.sun_path[0] == '@') a.sun_path[0] = '\0';  // the abstract namespace
    // A path's address includes its terminating NUL; an abstract name's is exactly its bytes.
    const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (where[0] == '/' ? 1 : 0));
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&a), addr_len);
    ::close(fd);
    return sent == static_cast<ssize_t>(state.size());
}

std::chrono::microseconds service_watchdog_period() {
    std::uint64_t usec = 0;
    if (!parse_u64(std::getenv("WATCHDOG_USEC"), usec) || usec == 0) return {};
    if (const char* pid = std::getenv("WATCHDOG_PID")) {
        std::uint64_t p = 0;
        if (!parse_u64(pid, p) || p != static_cast<std::uint64_t>(::getpid())) return {};  // meant for another process
    }
    return std::chrono::microseconds(usec);
}

}  // namespace hubgate::app
