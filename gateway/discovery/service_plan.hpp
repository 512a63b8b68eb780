// What the gateway advertises with DNS-SD (docs/discovery.md): one service per listener not bound to
// loopback, with its type, instance name, port and interface. Pure (no Avahi, no Asio): used by
// the advertiser and by its unit tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace hubgate::discovery {

// DNS-SD instance names are one DNS label: at most 63 bytes (RFC 6763 4.1.1).
inline constexpr std::size_t kMaxInstanceBytes = 63;

// One address of one network interface, as getifaddrs() reports it.
struct InterfaceAddress {
    std::string interface;  // "eth0"
    unsigned index = 0;     // if_nametoindex(interface)
    std::string address;    // numeric text, as inet_ntop writes it ("192.168.1.5", "fe80::1")
    bool loopback = false;  // IFF_LOOPBACK
};

// Where a listener is advertised.
struct Placement {
    enum class Kind { all_interfaces, one_interface, skip };
    Kind kind = Kind::skip;
    std::string interface;  // one_interface
    unsigned index = 0;     // one_interface: the interface index for avahi
    int family = 0;         // AF_INET or AF_INET6 when the listener takes only that; 0 for both
    std::string why;        // skip: a reason for the log ("bound to loopback")
};

// The placement of a listener bound to `host` (an address literal or "localhost"; names are
// resolved by the caller): 0.0.0.0 / [::] everywhere, a loopback address nowhere, any other
// address on the interface that owns it (and nowhere when no interface does).
Placement place(std::string_view host, const std::vector<InterfaceAddress>& interfaces);

// The machine's interface addresses (getifaddrs, if_nametoindex); IPv4 only, through
// ipv4_interfaces_ioctl(), where getifaddrs cannot open a netlink socket (the systemd unit).
std::vector<InterfaceAddress> system_interfaces();
std::vector<InterfaceAddress> ipv4_interfaces_ioctl();

// "_mqtt._tcp", "_secure-mqtt._tcp", "_coap._udp", "_coaps._udp".
const char* service_type(config::Protocol protocol) noexcept;

// The longest prefix of `text` of at most `max_bytes` bytes that ends on a UTF-8 character boundary.
std::string truncate_utf8(std::string_view text, std::size_t max_bytes);

// `pattern` with every "{gateway}" replaced by `gateway_id`, then " (<suffix>)" when `suffix` is
// not empty; at most 63 bytes: the base is cut (at a character boundary, trailing spaces dropped)
// so that the suffix, which tells two listeners of one type apart, survives.
std::string instance_name(std::string_view pattern, std::string_view gateway_id, std::string_view suffix = {});

// One service to register.
struct PlannedService {
    std::string listener;   // the listener's name, or its bind address, for logs
    std::string type;       // service_type()
    std::string name;       // the instance name
    std::uint16_t port = 0;
    Placement where;
    std::string auth;       // TXT auth=
};

struct Plan {
    std::vector<PlannedService> services;
    std::vector<std::string> skipped;  // "listener 127.0.0.1:1883 (bound to loopback)"
};

// `ports` holds each listener's actual port, in the config's listener order (0: take the bind
// port). Names other than "localhost" are resolved with getaddrinfo, as the listeners bind them.
Plan plan_services(const std::vector<config::Listener>& listeners, const std::vector<std::uint16_t>& ports,
                   std::string_view instance, std::string_view gateway_id,
                   const std::vector<InterfaceAddress>& interfaces);

// The listeners' actual ports in listener order, from the MQTT server's (mqtt/mqtts listeners in
// order) and the CoAP server's (coap/coaps listeners in order).
std::vector<std::uint16_t> listener_ports(const std::vector<config::Listener>& listeners,
                                          const std::vector<std::uint16_t>& mqtt_ports,
                                          const std::vector<std::uint16_t>& coap_ports);

// The TXT items of a service: gw=, auth=, pair=open|closed.
std::vector<std::string> txt_items(std::string_view gateway_id, std::string_view auth, bool pair_open);

}  // namespace hubgate::discovery
