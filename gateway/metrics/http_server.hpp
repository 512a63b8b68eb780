// Serves the metrics registry over HTTP (Boost.Beast): GET /metrics (Prometheus text) and
// GET /healthz. Used by gateway/app only; Asio and Beast stay inside http_server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gateway/model/result.hpp"

namespace boost::asio {
class io_context;
}

namespace hubgate::metrics {

class Registry;

class HttpServer {
public:
    // `healthy` decides /healthz: 200 "ok" or 503 with the reason it returns (empty = healthy).
    HttpServer(boost::asio::io_context& io, Registry& registry,
               std::function<std::string()> unhealthy_reason = {});
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and starts accepting. Port 0 picks a free port (see port()).
    Status listen(const std::string& host, std::uint16_t port);
    std::uint16_t port() const noexcept;
    void stop();  // closes the acceptor; open connections finish their response

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace hubgate::metrics
