#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"

namespace hubgate::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// Scrapes the running gateway's own /metrics: one source of truth for `status` and for Prometheus.
std::optional<std::string> fetch_metrics(const config::Endpoint& ep, std::string& error) {
    try {
        asio::io_context io;
        asio::ip::tcp::resolver resolver(io);
        beast::tcp_stream stream(io);
        stream.expires_after(std::chrono::seconds(5));
        stream.connect(resolver.resolve(ep.host, std::to_string(ep.port)));
        http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
        req.set(http::field::host, ep.host);
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        if (res.result() != http::status::ok) {
            error = "metrics endpoint answered " + std::to_string(res.result_int());
            return std::nullopt;
        }
        return std::move(res.body());
    } catch (const std::exception& e) {
        error = e.what();
        return std::nullopt;
    }
}

// "name{labels} value" lines -> map; label sets are kept in the key.
std::map<std::string, double> parse_prometheus(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto sp = line.rfind(' ');
        if (sp == std::string::npos) continue;
        out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
    }
    return out;
}

std::string human_age(double seconds) {
    char buf[64];
    if (seconds < 120) std::snprintf(buf, sizeof buf, "%.0f s", seconds);
    else if (seconds < 7200) std::snprintf(buf, sizeof buf, "%.1f min", seconds / 60);
    else std::snprintf(buf, sizeof buf, "%.1f h", seconds / 3600);
    return buf;
}

}  // namespace

int cmd_status(const std::string& config_path) {
    const auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return kExitBadConfig;
    }
    const auto& ep = loaded.config->metrics.bind;
    std::string error;
    const auto text = fetch_metrics(ep, error);
    if (!text) {
        std::cerr << "hubgate is not running or not reachable at " << ep.to_string() << " (" << error << ")\n";
        return kExitNotRunning;
    }
    const auto m = parse_prometheus(*text);
    auto get = [&](const std::string& k) { auto it = m.find(k); return it == m.end() ? 0.0 : it->second; };
    std::cout << "gateway:    " << loaded.config->gateway.id << " (metrics at " << ep.to_string() << ")\n";
    // Disconnected: how long the reconnect schedule waits before its next attempt (docs/upstream.md).
    std::string upstream_state = "connected";
    // The url in use (a cluster's node): hubgate_upstream_node{url="..."} 1.
    const std::string node_prefix = "hubgate_upstream_node{url=\"";
    for (auto it = m.lower_bound(node_prefix); it != m.end() && it->first.rfind(node_prefix, 0) == 0; ++it) {
        if (it->second < 1) continue;
        const auto end = it->first.rfind('"');
        if (end > node_prefix.size()) upstream_state += " to " + it->first.substr(node_prefix.size(), end - node_prefix.size());
    }
    if (get("hubgate_upstream_connected") <= 0) {
        upstream_state = "disconnected (next attempt after a " +
                         std::to_string(static_cast<std::uint64_t>(get("hubgate_upstream_backoff_ms"))) + " ms wait; " +
                         human_age(get("hubgate_upstream_disconnected_seconds_total")) + " disconnected in all)";
    }
    std::cout << "upstream:   " << upstream_state << " as "
              << loaded.config->upstream.gateway_device_id << ", "
              << static_cast<std::uint64_t>(get("hubgate_upstream_messages_relayed_total")) << " messages relayed in "
              << static_cast<std::uint64_t>(get("hubgate_upstream_batches_total")) << " batches\n";
    std::cout << "devices:    " << static_cast<std::uint64_t>(get("hubgate_mqtt_connections")) << " connected (MQTT)\n";
    // The pairing window (docs/pairing.md): open until hubgate_pairing_window_closes_at_seconds.
    std::string pairing_state = "closed";
    if (get("hubgate_pairing_window_open") > 0) {
        const double left = get("hubgate_pairing_window_closes_at_seconds") -
                            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        pairing_state = "open (" + human_age(std::max(0.0, left)) + " left)";
    }
    std::cout << "pairing:    " << pairing_state << ", " << static_cast<std::uint64_t>(get("hubgate_pairing_pending_devices"))
              << " devices pending\n";
    // DNS-SD (docs/discovery.md): the listeners avahi-daemon announces for the gateway.
    std::string discovery_state = "off ([discovery] mdns = false)";
    if (loaded.config->discovery.mdns) {
        if (!m.contains("hubgate_discovery_services")) {
            discovery_state = "nothing to advertise (no listener off loopback)";
        } else {
            discovery_state = std::to_string(static_cast<std::uint64_t>(get("hubgate_discovery_registered"))) + " of " +
                              std::to_string(static_cast<std::uint64_t>(get("hubgate_discovery_services"))) +
                              " services advertised";
            if (get("hubgate_discovery_daemon_connected") <= 0) discovery_state += " (avahi-daemon not reachable)";
        }
    }
    std::cout << "discovery:  " << discovery_state << "\n";
    std::cout << "queue:      " << static_cast<std::uint64_t>(get("hubgate_store_messages")) << " messages, "
              << static_cast<std::uint64_t>(get("hubgate_store_bytes")) << " bytes, oldest "
              << human_age(get("hubgate_store_oldest_age_seconds")) << "\n";
    std::cout << "dropped:    ttl " << get("hubgate_store_dropped_total{reason=\"ttl\"}") << ", overflow "
              << get("hubgate_store_dropped_total{reason=\"overflow\"}") << "\n";
    return kExitOk;
}

}  // namespace hubgate::app
