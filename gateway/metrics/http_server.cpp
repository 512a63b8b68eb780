#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/metrics/http_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "gateway/metrics/registry.hpp"

namespace hubgate::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// One HTTP connection: read request -> write response -> read next (keep-alive), in one chain.
class Session : public std::enable_shared_from_this<Session> {
public:
    // `owner` keeps the server state (and so `unhealthy`) alive while this connection runs.
    Session(tcp::socket socket, std::shared_ptr<const void> owner, Registry& registry,
            const std::function<std::string()>& unhealthy)
        : stream_(std::move(socket)), owner_(std::move(owner)), registry_(registry), unhealthy_(unhealthy) {}

    void start() { do_read(); }

private:
    void do_read() {
        parser_.emplace();
        parser_->header_limit(8 * 1024);
        parser_->body_limit(8 * 1024);  // scrapers send no body; refuse anything large
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) return close();  // peer closed, timeout, or malformed request
        const auto& req = parser_->get();
        response_ = {};
        response_.version(req.version());
        response_.keep_alive(req.keep_alive());
        response_.set(http::field::server, "hubgate");
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            respond(http::status::method_not_allowed, "text/plain", "only GET is served\n");
        } else if (req.target() == "/metrics") {
            respond(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", registry_.render());
        } else if (req.target() == "/healthz") {
            const std::string why = unhealthy_ ? unhealthy_() : std::string();
            if (why.empty()) respond(http::status::ok, "text/plain", "ok\n");
            else respond(http::status::service_unavailable, "text/plain", why + "\n");
        } else {
            respond(http::status::not_found, "text/plain", "not found: try /metrics or /healthz\n");
        }
        if (req.method() == http::verb::head) response_.body().clear();
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code wec, std::size_t) { self->on_write(wec); });
    }

    void respond(http::status status, const char* content_type, std::string body) {
        response_.result(status);
        response_.set(http::field::content_type, content_type);
        response_.body() = std::move(body);
        response_.prepare_payload();
    }

    void on_write(beast::error_code ec) {
        if (ec || !response_.keep_alive()) return close();
        do_read();
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    std::shared_ptr<const void> owner_;
    beast::flat_buffer buffer_{4096};
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
    Registry& registry_;
    const std::function<std::string()>& unhealthy_;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
    Impl(asio::io_context& io, Registry& r, std::function<std::string()> u)
        : acceptor(io), registry(r), unhealthy(std::move(u)) {}

    void do_accept() {
        acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
            if (!self->acceptor.is_open()) return;
            if (ec) {
                // EMFILE and friends: keep serving; try again shortly rather than spinning. Accept
                // flaps while descriptors are scarce, so the line is logged at most once a minute.
                const auto now = std::chrono::steady_clock::now();
                if (self->accept_error_logged_at == std::chrono::steady_clock::time_point{} ||
                    now - self->accept_error_logged_at > std::chrono::minutes(1)) {
                    self->accept_error_logged_at = now;
                    spdlog::warn("metrics: accept failed: {} (retrying)", ec.message());
                }
                self->retry_timer = std::make_unique<asio::steady_timer>(self->acceptor.get_executor(),
                                                                         std::chrono::milliseconds(200));
                self->retry_timer->async_wait([self](beast::error_code) { self->do_accept(); });
                return;
            }
            std::make_shared<Session>(std::move(socket), self, self->registry, self->unhealthy)->start();
            self->do_accept();
        });
    }

    tcp::acceptor acceptor;
    Registry& registry;
    std::function<std::string()> unhealthy;
    std::unique_ptr<asio::steady_timer> retry_timer;
    std::chrono::steady_clock::time_point accept_error_logged_at{};
};

HttpServer::HttpServer(asio::io_context& io, Registry& registry, std::function<std::string()> unhealthy)
    : impl_(std::make_shared<Impl>(io, registry, std::move(unhealthy))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::listen(const std::string& host, std::uint16_t port) {
    beast::error_code ec;
    tcp::endpoint ep;
    const auto address = asio::ip::make_address(host, ec);
    if (!ec) {
        ep = tcp::endpoint(address, port);
    } else {
        // A name such as "localhost": resolve once at start.
        tcp::resolver resolver(impl_->acceptor.get_executor());
        const auto results = resolver.resolve(host, std::to_string(port), ec);
        if (ec || results.empty())
            return Error{"metrics bind address '" + host + "' does not resolve" + (ec ? ": " + ec.message() : "")};
        // Prefer IPv4 ("localhost" means 127.0.0.1 to most scrapers), else the first answer.
        ep = results.begin()->endpoint();
        for (const auto& r : results)
            if (r.endpoint().address().is_v4()) {
                ep = r.endpoint();
                break;
            }
    }
    auto& a = impl_->acceptor;
    // Each step names itself, and the error is the step's own (closing must not overwrite it).
    const char* step = "socket";
    a.open(ep.protocol(), ec);
    if (!ec) { step = "setsockopt(SO_REUSEADDR)"; a.set_option(asio::socket_base::reuse_address(true), ec); }
    if (!ec) { step = "bind"; a.bind(ep, ec); }
    if (!ec) { step = "listen"; a.listen(asio::socket_base::max_listen_connections, ec); }
    if (ec) {
        beast::error_code ignored;
        a.close(ignored);
        std::string why = ec.message();
        if (ec == asio::error::address_in_use) why += " (another process listens there: change [metrics] bind)";
        else if (ec == asio::error::access_denied) why += " (ports below 1024 need CAP_NET_BIND_SERVICE)";
        return Error{"cannot listen for metrics on " + host + ":" + std::to_string(port) + ": " + step + ": " + why};
    }
    impl_->do_accept();
    return std::nullopt;
}

std::uint16_t HttpServer::port() const noexcept {
    beast::error_code ec;
    const auto ep = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void HttpServer::stop() {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    if (impl_->retry_timer) impl_->retry_timer->cancel();
}

}  // namespace hubgate::metrics
