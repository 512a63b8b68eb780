#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/pairing/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <filesystem>
#include <istream>
#include <sstream>
#include <spdlog/spdlog.h>

#include "gateway/pairing/pairing.hpp"

namespace hubgate::pairing {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string window_line(PairingWindow& w) {
    if (!w.is_open()) return "closed\n";
    return "open " + std::to_string(w.time_left().count()) + " s left\n";
}

}  // namespace

std::string handle_control_request(Pairing& pairing, const std::string& line) {
    std::istringstream in(line);
    std::string verb, what, arg;
    in >> verb >> what >> arg;
    std::string extra;
    if (in >> extra) return "error\ntoo many words in the request\n";
    if (verb == "pair" && what == "open") {
        std::uint32_t seconds = pairing.default_window_seconds();
        if (!arg.empty()) {
            const auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), seconds);
            if (ec != std::errc{} || p != arg.data() + arg.size() || seconds < 1 || seconds > 86400)
                return "error\n--for must be 1-86400 seconds\n";
        }
        pairing.window().open(std::chrono::seconds(seconds));
        return "ok\n" + window_line(pairing.window());
    }
    if (verb == "pair" && what == "close" && arg.empty()) {
        pairing.window().close();
        return "ok\nclosed\n";
    }
    if (verb == "pair" && what == "status" && arg.empty()) return "ok\n" + window_line(pairing.window());
    if (verb == "devices" && what == "pending" && arg.empty()) {
        // Tab-separated, times as unix milliseconds: the CLI formats them.
        std::string out = "ok\n";
        for (const auto& d : pairing.pending())
            out += d.id + '\t' + d.enrollment + '\t' + d.address + '\t' + std::to_string(unix_ms(d.first)) + '\t' +
                   std::to_string(unix_ms(d.last)) + '\t' + std::to_string(d.count) + '\n';
        return out;
    }
    if (verb == "devices" && what == "approve" && !arg.empty()) {
        auto r = pairing.approve(arg);
        if (!r) return "error\n" + r.error() + "\n";
        return "ok\napproved device " + arg + " (enrollment " + *r + ")\n";
    }
    return "error\nunknown request\n";
}

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
    Impl(asio::io_context& io_, Pairing& p, std::string path_) : io(io_), pairing(p), path(std::move(path_)), acceptor(io_) {}

    asio::io_context& io;
    Pairing& pairing;
    std::string path;
    local::acceptor acceptor;
    bool running = false;

    struct Conn {
        explicit Conn(asio::io_context& io) : socket(io), timer(io), buf(1024) {}
        local::socket socket;
        asio::steady_timer timer;
        asio::streambuf buf;
        std::string reply;
    };

    void accept() {
        acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, local::socket s) {
            if (!self->running) return;
            if (!ec) self->serve(std::move(s));
            self->accept();
        });
    }

    // Only root and the gateway's own user may act on it (the file's mode says the same; this
    // holds even if someone loosens it).
    static bool peer_allowed(local::socket& s) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
        return cred.uid == 0 || cred.uid == ::geteuid();
    }

    void serve(local::socket s) {
        auto c = std::make_shared<Conn>(io);
        c->socket = std::move(s);
        if (!peer_allowed(c->socket)) {
            spdlog::warn("control: a process of another user was refused");
            c->reply = "error\npermission denied: only root and the gateway's user may control it\n";
            return write(c);
        }
        c->timer.expires_after(std::chrono::seconds(5));
        c->timer.async_wait([c](const boost::system::error_code& ec) {
            if (!ec) {
                boost::system::error_code ignored;
                c->socket.close(ignored);
            }
        });
        asio::async_read_until(c->socket, c->buf, '\n',
                               [self = shared_from_this(), c](const boost::system::error_code& ec, std::size_t) {
                                   if (ec) {
                                       c->timer.cancel();
                                       return;
                                   }
                                   std::istream in(&c->buf);
                                   std::string line;
                                   std::getline(in, line);
                                   c->reply = handle_control_request(self->pairing, line);
                                   self->write(c);
                               });
    }

    void write(const std::shared_ptr<Conn>& c) {
        asio::async_write(c->socket, asio::buffer(c->reply), [c](const boost::system::error_code&, std::size_t) {
            c->timer.cancel();
            boost::system::error_code ignored;
            c->socket.shutdown(local::socket::shutdown_both, ignored);
            c->socket.close(ignored);
        });
    }
};

ControlServer::ControlServer(asio::io_context& io, Pairing& pairing, std::string socket_path)
    : impl_(std::make_shared<Impl>(io, pairing, std::move(socket_path))) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start() {
    auto& i = *impl_;
    if (i.path.size() >= sizeof(sockaddr_un::sun_path))
        return Error{"cannot serve the control socket " + i.path + ": the path is too long for a unix socket"};
    std::error_code fec;
    std::filesystem::remove(i.path, fec);  // a stale file from a gateway that was killed
    boost::system::error_code ec;
    i.acceptor.open(local(), ec);
    if (!ec) i.acceptor.bind(local::endpoint(i.path), ec);
    // 0600 before listening: nobody connects before it holds (umask would be process-wide, and the
    // store writer creates files meanwhile). Peers are checked with SO_PEERCRED as well.
    if (!ec && ::chmod(i.path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) i.acceptor.listen(16, ec);
    if (ec) return Error{"cannot serve the control socket " + i.path + ": " + ec.message()};
    i.running = true;
    i.accept();
    return std::nullopt;
}

void ControlServer::stop() {
    auto& i = *impl_;
    if (!i.running) return;
    i.running = false;
    boost::system::error_code ec;
    i.acceptor.close(ec);
    std::error_code fec;
    std::filesystem::remove(i.path, fec);
}

}  // namespace hubgate::pairing
