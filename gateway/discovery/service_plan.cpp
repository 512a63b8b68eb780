#include "gateway/discovery/service_plan.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>

namespace hubgate::discovery {

namespace {

struct Address {
    int family = 0;
    unsigned char bytes[16] = {};
    unsigned scope = 0;  // IPv6 link-local: the interface in "fe80::1%eth0"
    bool operator==(const Address& o) const {
        return family == o.family && std::memcmp(bytes, o.bytes, family == AF_INET ? 4 : 16) == 0;
    }
};

// A numeric address (IPv6 with an optional %scope), or nothing.
bool parse_address(std::string_view text, Address& out) {
    std::string s(text);
    std::string scope;
    if (const auto pct = s.find('%'); pct != std::string::npos) {
        scope = s.substr(pct + 1);
        s.resize(pct);
    }
    if (scope.empty() && inet_pton(AF_INET, s.c_str(), out.bytes) == 1) {
        out.family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), out.bytes) == 1) {
        out.family = AF_INET6;
        if (!scope.empty()) {
            out.scope = if_nametoindex(scope.c_str());
            if (out.scope == 0) out.scope = static_cast<unsigned>(std::strtoul(scope.c_str(), nullptr, 10));
        }
        return true;
    }
    return false;
}

bool is_any(const Address& a) {
    static const unsigned char zero[16] = {};
    return std::memcmp(a.bytes, zero, a.family == AF_INET ? 4 : 16) == 0;
}

bool is_loopback(const Address& a) {
    if (a.family == AF_INET) return a.bytes[0] == 127;
    static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes, v6_loopback, 16) == 0) return true;
    return std::memcmp(a.bytes, v4_mapped, 12) == 0 && a.bytes[12] == 127;
}

// The first address getaddrinfo gives for a name (what the listener bound), as text.
std::string resolve(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return {};
    char buf[INET6_ADDRSTRLEN] = {};
    const void* src = res->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr);
    std::string out = inet_ntop(res->ai_family, src, buf, sizeof buf) ? buf : "";
    freeaddrinfo(res);
    return out;
}

}  // namespace

Placement place(std::string_view host, const std::vector<InterfaceAddress>& interfaces) {
    Placement p;
    if (host == "localhost") {
        p.why = "bound to loopback";
        return p;
    }
    Address a;
    if (!parse_address(host, a)) {
        p.why = "cannot resolve " + std::string(host);
        return p;
    }
    if (is_loopback(a)) {
        p.why = "bound to loopback";
        return p;
    }
    if (is_any(a)) {
        p.kind = Placement::Kind::all_interfaces;
        // 0.0.0.0 takes IPv4 only; [::] takes both (Linux sockets are dual-stack by default).
        p.family = a.family == AF_INET ? AF_INET : 0;
        return p;
    }
    for (const auto& i : interfaces) {
        Address b;
        if (!parse_address(i.address, b) || !(a == b)) continue;
        if (a.scope != 0 && i.index != a.scope) continue;  // fe80::1%eth1 is not eth0's fe80::1
        if (i.loopback) {
            p.why = "bound to an address of loopback interface " + i.interface;
            return p;
        }
        p.kind = Placement::Kind::one_interface;
        p.interface = i.interface;
        p.index = i.index;
        p.family = a.family;
        return p;
    }
    p.why = "no interface has the address " + std::string(host);
    return p;
}

// IPv4 addresses through SIOCGIFCONF on an AF_INET socket: where getifaddrs() cannot open its
// netlink socket (the systemd unit's RestrictAddressFamilies= has no AF_NETLINK).
std::vector<InterfaceAddress> ipv4_interfaces_ioctl() {
    std::vector<InterfaceAddress> out;
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return out;
    std::vector<ifreq> reqs(64);
    ifconf conf{};
    conf.ifc_len = static_cast<int>(reqs.size() * sizeof(ifreq));
    conf.ifc_req = reqs.data();
    if (::ioctl(fd, SIOCGIFCONF, &conf) == 0) {
        const std::size_t n = static_cast<std::size_t>(conf.ifc_len) / sizeof(ifreq);
        for (std::size_t i = 0; i < n && i < reqs.size(); ++i) {
            ifreq& r = reqs[i];
            if (r.ifr_addr.sa_family != AF_INET) continue;
            char buf[INET_ADDRSTRLEN] = {};
            sockaddr_in sin{};
            std::memcpy(&sin, &r.ifr_addr, sizeof sin);
            if (!inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf)) continue;
            std::string name(r.ifr_name, strnlen(r.ifr_name, IFNAMSIZ));
            ifreq flags{};
            std::memcpy(flags.ifr_name, r.ifr_name, IFNAMSIZ);
            const bool loopback = ::ioctl(fd, SIOCGIFFLAGS, &flags) == 0 && (flags.ifr_flags & IFF_LOOPBACK);
            out.push_back({name, if_nametoindex(name.c_str()), buf, loopback});
        }
    }
    ::close(fd);
    return out;
}

std::vector<InterfaceAddress> system_interfaces() {
    std::vector<InterfaceAddress> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return ipv4_interfaces_ioctl();
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !i->ifa_name) continue;
        const int family = i->ifa_addr->sa_family;
        if (family != AF_INET && family != AF_INET6) continue;
        char buf[INET6_ADDRSTRLEN] = {};
        const void* src = family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)
                                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
        if (!inet_ntop(family, src, buf, sizeof buf)) continue;
        out.push_back({i->ifa_name, if_nametoindex(i->ifa_name), buf, (i->ifa_flags & IFF_LOOPBACK) != 0});
    }
    freeifaddrs(list);
    return out;
}

const char* service_type(config::Protocol protocol) noexcept {
    switch (protocol) {
        case config::Protocol::mqtt: return "_mqtt._tcp";
        case config::Protocol::mqtts: return "_secure-mqtt._tcp";
        case config::Protocol::coap: return "_coap._udp";
        case config::Protocol::coaps: return "_coaps._udp";
    }
    return "_mqtt._tcp";
}

std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return std::string(text);
    std::size_t n = max_bytes;
    // text[n] is the first byte cut off; while it continues a character, that character is cut too.
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
    return std::string(text.substr(0, n));
}

std::string instance_name(std::string_view pattern, std::string_view gateway_id, std::string_view suffix) {
    std::string base;
    for (std::size_t i = 0; i < pattern.size();) {
        if (pattern.substr(i, 9) == "{gateway}") {
            base += gateway_id;
            i += 9;
        } else {
            base += pattern[i++];
        }
    }
    const std::string tail = suffix.empty() ? std::string() : " (" + std::string(suffix) + ")";
    if (base.size() + tail.size() <= kMaxInstanceBytes) return base + tail;
    if (tail.size() >= kMaxInstanceBytes / 2) return truncate_utf8(base + tail, kMaxInstanceBytes);
    base = truncate_utf8(base, kMaxInstanceBytes - tail.size());
    while (!base.empty() && base.back() == ' ') base.pop_back();
    return base + tail;
}

Plan plan_services(const std::vector<config::Listener>& listeners, const std::vector<std::uint16_t>& ports,
                   std::string_view instance, std::string_view gateway_id,
                   const std::vector<InterfaceAddress>& interfaces) {
    Plan plan;
    std::vector<const config::Listener*> kept;
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        const auto& l = listeners[i];
        const std::uint16_t port = i < ports.size() && ports[i] ? ports[i] : l.bind.port;
        const std::string label = l.name.empty() ? l.bind.to_string() : l.name + " (" + l.bind.to_string() + ")";
        std::string host = l.bind.host;
        Address probe;
        if (host != "localhost" && !parse_address(host, probe)) {
            host = resolve(host);
            if (host.empty()) host = l.bind.host;
        }
        Placement where = place(host, interfaces);
        if (where.kind == Placement::Kind::skip) {
            plan.skipped.push_back("listener " + label + " (" + where.why + ")");
            continue;
        }
        PlannedService s;
        s.listener = label;
        s.type = service_type(l.protocol);
        s.port = port;
        s.where = std::move(where);
        s.auth = config::to_string(l.auth);
        plan.services.push_back(std::move(s));
        kept.push_back(&l);
    }
    std::map<std::string, int> per_type;
    for (const auto& s : plan.services) ++per_type[s.type];
    for (std::size_t i = 0; i < plan.services.size(); ++i) {
        auto& s = plan.services[i];
        const std::string suffix =
            per_type[s.type] > 1 ? (kept[i]->name.empty() ? std::to_string(s.port) : kept[i]->name) : std::string();
        s.name = instance_name(instance, gateway_id, suffix);
    }
    return plan;
}

std::vector<std::uint16_t> listener_ports(const std::vector<config::Listener>& listeners,
                                          const std::vector<std::uint16_t>& mqtt_ports,
                                          const std::vector<std::uint16_t>& coap_ports) {
    std::vector<std::uint16_t> out;
    std::size_t m = 0, c = 0;
    for (const auto& l : listeners) {
        const bool tcp = l.protocol == config::Protocol::mqtt || l.protocol == config::Protocol::mqtts;
        const auto& from = tcp ? mqtt_ports : coap_ports;
        std::size_t& at = tcp ? m : c;
        out.push_back(at < from.size() ? from[at] : l.bind.port);
        ++at;
    }
    return out;
}

std::vector<std::string> txt_items(std::string_view gateway_id, std::string_view auth, bool pair_open) {
    return {"gw=" + std::string(gateway_id), "auth=" + std::string(auth),
            std::string("pair=") + (pair_open ? "open" : "closed")};
}

}  // namespace hubgate::discovery
