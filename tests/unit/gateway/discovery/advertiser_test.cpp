#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/discovery/advertiser.hpp"

#include <doctest/doctest.h>

#include <cstdlib>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "gateway/metrics/registry.hpp"

using namespace hubgate;
using namespace std::chrono_literals;

namespace {

double value(const metrics::Registry& r, const std::string& series) {
    const auto text = r.render();
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

discovery::AdvertiserOptions one_service() {
    discovery::AdvertiserOptions o;
    discovery::PlannedService s;
    s.listener = "0.0.0.0:1883";
    s.type = "_mqtt._tcp";
    s.name = "hubgate gw-01";
    s.port = 1883;
    s.where.kind = discovery::Placement::Kind::all_interfaces;
    s.auth = "sas";
    o.services.push_back(s);
    o.gateway_id = "gw-01";
    o.retry = 20ms;
    return o;
}

}  // namespace

TEST_CASE("without a D-Bus system bus the advertiser retries quietly and the loop runs on") {
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/hubgate-test-bus", 1);
    boost::asio::io_context io;
    metrics::Registry registry;
    discovery::Advertiser a(io, one_service(), registry);
    a.start();
    a.set_pair_open(true);  // no client: kept for when one registers
    io.run_for(150ms);      // several retries
    CHECK(value(registry, "hubgate_discovery_services") == 1);
    CHECK(value(registry, "hubgate_discovery_registered") == 0);
    CHECK(value(registry, "hubgate_discovery_daemon_connected") == 0);
    a.stop();
    io.restart();
    const auto t0 = std::chrono::steady_clock::now();
    io.run_for(1s);
    CHECK(io.stopped());  // out of work at once: no retry left armed (only the cancelled one ran)
    CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
    REQUIRE(a.describe().size() == 1);
    CHECK(a.describe()[0] == "\"hubgate gw-01\" _mqtt._tcp port 1883 on all interfaces (listener 0.0.0.0:1883)");
}

TEST_CASE("an advertiser with nothing to advertise never connects") {
    boost::asio::io_context io;
    metrics::Registry registry;
    discovery::AdvertiserOptions o;
    o.gateway_id = "gw-01";
    discovery::Advertiser a(io, o, registry);
    a.start();
    CHECK(io.run_for(30ms) == 0);
    CHECK(value(registry, "hubgate_discovery_services") == 0);
}
