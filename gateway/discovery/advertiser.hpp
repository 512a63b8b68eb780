// Advertises the gateway's listeners with DNS-SD through avahi-daemon's D-Bus API (libavahi-client,
// loaded when the first Advertiser is made: avahi_api.hpp), on the gateway's Asio loop (AsioPoll). Without D-Bus or avahi-daemon it logs once and retries;
// when the daemon restarts, the services come back. Wired in gateway/app; docs/discovery.md.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gateway/discovery/service_plan.hpp"

namespace boost::asio {
class io_context;
}
namespace hubgate::metrics {
class Registry;
}

namespace hubgate::discovery {

struct AdvertiserOptions {
    std::vector<PlannedService> services;  // plan_services()
    std::string gateway_id;                // TXT gw=
    // No D-Bus system bus (avahi_client_new fails): the next try after this long.
    std::chrono::milliseconds retry{5000};
};

class Advertiser {
public:
    Advertiser(boost::asio::io_context& io, AdvertiserOptions options, metrics::Registry& registry);
    ~Advertiser();  // stop()
    Advertiser(const Advertiser&) = delete;
    Advertiser& operator=(const Advertiser&) = delete;

    // Connects to avahi-daemon and registers every service (loop thread). Nothing to advertise: no-op.
    void start();
    // Withdraws every service (frees the client: the daemon sends goodbyes) and stops retrying.
    void stop();
    // The pairing window opened or closed: TXT pair=open|closed on every service at once, without a
    // new probe. Any thread (runs on the loop); services registered later carry the latest value.
    void set_pair_open(bool open);

    // One line per service: "hubgate gw-01" _mqtt._tcp port 1883 on all interfaces (IPv4) (listener ...).
    std::vector<std::string> describe() const;

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

// The gateway's advertiser for its config and its listeners' actual ports (listener_ports()),
// started; null when `[discovery] mdns = false` or no listener is off loopback. Logs what it
// advertises and what it leaves out.
std::unique_ptr<Advertiser> advertise_listeners(boost::asio::io_context& io, const config::Config& cfg,
                                                const std::vector<std::uint16_t>& ports, metrics::Registry& registry);

}  // namespace hubgate::discovery
