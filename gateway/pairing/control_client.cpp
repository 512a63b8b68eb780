#include "gateway/pairing/control_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hubgate::pairing {

std::string control_socket_path(const config::Config& cfg) {
    return (std::filesystem::path(cfg.gateway.data_dir) / "hubgate.sock").string();
}

Result<ControlReply> control_request(const std::string& socket_path, const std::string& request) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path)
        return Error{"control socket path " + socket_path + " is too long for a unix socket"};
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error{std::string("socket: ") + std::strerror(errno)};
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return Error{socket_path + ": " + std::strerror(errno)};
    const std::string line = request + "\n";
    for (std::size_t off = 0; off < line.size();) {
        const ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return Error{std::string("sending to the gateway: ") + std::strerror(errno)};
        off += static_cast<std::size_t>(n);
    }
    std::string answer;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error{std::string("reading the gateway's answer: ") + std::strerror(errno)};
        }
        answer.append(buf, static_cast<std::size_t>(n));
        if (answer.size() > (1u << 20)) return Error{"the gateway's answer is too long"};
    }
    const auto nl = answer.find('\n');
    if (nl == std::string::npos) return Error{"the gateway closed the control connection without an answer"};
    ControlReply r;
    r.ok = answer.compare(0, nl, "ok") == 0;
    r.text = answer.substr(nl + 1);
    return r;
}

}  // namespace hubgate::pairing
