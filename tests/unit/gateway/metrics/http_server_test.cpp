#include <utility>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "gateway/metrics/http_server.hpp"
#include "gateway/metrics/registry.hpp"
#include "tests/support/process.hpp"

using namespace hubgate;

namespace {

// Runs an HttpServer on a background io_context for the duration of a test.
struct Served {
    explicit Served(std::function<std::string()> unhealthy = {})
        : server(io, registry, std::move(unhealthy)) {}
    void start() {
        REQUIRE_FALSE(server.listen("127.0.0.1", 0).has_value());
        thread = std::thread([this] { io.run(); });
    }
    ~Served() {
        io.stop();
        if (thread.joinable()) thread.join();
    }
    boost::asio::io_context io;
    metrics::Registry registry;
    metrics::HttpServer server;
    std::thread thread;
};

}  // namespace

TEST_CASE("GET /metrics serves the registry as Prometheus text") {
    Served s;
    s.registry.counter("hubgate_test_total", "t").inc(42);
    s.start();
    const auto r = test::http_get(s.server.port(), "/metrics");
    CHECK(r.status == 200);
    CHECK(r.body.find("hubgate_test_total 42\n") != std::string::npos);
}

TEST_CASE("GET /healthz is 200 when healthy and 503 with the reason when not") {
    std::string reason;
    Served s([&] { return reason; });
    s.start();
    CHECK(test::http_get(s.server.port(), "/healthz").status == 200);
    reason = "store closed";
    const auto r = test::http_get(s.server.port(), "/healthz");
    CHECK(r.status == 503);
    CHECK(r.body.find("store closed") != std::string::npos);
}

TEST_CASE("an unknown path is 404 and the server keeps serving") {
    Served s;
    s.start();
    CHECK(test::http_get(s.server.port(), "/nope").status == 404);
    CHECK(test::http_get(s.server.port(), "/metrics").status == 200);
}

TEST_CASE("listening on an address this machine does not have is refused with a reason naming it") {
    boost::asio::io_context io;
    metrics::Registry registry;
    metrics::HttpServer server(io, registry);
    const auto err = server.listen("192.0.2.1", 0);  // TEST-NET-1: never local; bind fails, nothing is sent
    REQUIRE(err.has_value());
    CHECK(err->reason.find("192.0.2.1") != std::string::npos);
}

TEST_CASE("a host name such as localhost is resolved") {
    Served s;
    REQUIRE_FALSE(s.server.listen("localhost", 0).has_value());
    s.thread = std::thread([&] { s.io.run(); });
    CHECK(test::http_get(s.server.port(), "/healthz").status == 200);
}

TEST_CASE("listening on a port already in use is refused with a reason naming it") {
    Served first;
    first.start();
    boost::asio::io_context io;
    metrics::Registry registry;
    metrics::HttpServer second(io, registry);
    const auto err = second.listen("127.0.0.1", first.server.port());
    REQUIRE(err.has_value());
    CHECK(err->reason.find(std::to_string(first.server.port())) != std::string::npos);
}
