#include "gateway/discovery/service_plan.hpp"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>

using namespace hubgate;
using namespace hubgate::discovery;

namespace {

const std::vector<InterfaceAddress> kInterfaces{
    {"lo", 1, "127.0.0.1", true},
    {"lo", 1, "::1", true},
    {"eth0", 2, "192.168.1.5", false},
    {"eth0", 2, "fe80::1", false},
    {"wlan0", 3, "10.0.0.7", false},
    {"wlan0", 3, "fe80::1", false},
    {"lo1", 4, "169.254.9.9", true},
};

config::Listener listener(config::Protocol p, std::string host, std::uint16_t port, std::string name = {},
                          config::ListenerAuth auth = config::ListenerAuth::sas) {
    config::Listener l;
    l.protocol = p;
    l.bind = {std::move(host), port};
    l.name = std::move(name);
    l.auth = auth;
    return l;
}

bool valid_utf8_prefix(const std::string& s) {
    // every multi-byte sequence complete: count continuation bytes after each lead byte
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

}  // namespace

TEST_CASE("each protocol has its DNS-SD service type") {
    CHECK(std::string(service_type(config::Protocol::mqtt)) == "_mqtt._tcp");
    CHECK(std::string(service_type(config::Protocol::mqtts)) == "_secure-mqtt._tcp");
    CHECK(std::string(service_type(config::Protocol::coap)) == "_coap._udp");
    CHECK(std::string(service_type(config::Protocol::coaps)) == "_coaps._udp");
}

TEST_CASE("the instance name replaces {gateway} with the gateway id") {
    CHECK(instance_name("hubgate {gateway}", "gw-01") == "hubgate gw-01");
    CHECK(instance_name("{gateway} at {gateway}", "a") == "a at a");
    CHECK(instance_name("Kitchen hub", "gw-01") == "Kitchen hub");
}

TEST_CASE("a suffix is appended in parentheses") {
    CHECK(instance_name("hubgate {gateway}", "gw-01", "lan") == "hubgate gw-01 (lan)");
    CHECK(instance_name("hubgate {gateway}", "gw-01", "1884") == "hubgate gw-01 (1884)");
}

TEST_CASE("an instance name is at most 63 bytes and keeps its suffix") {
    const std::string id(128, 'g');
    const auto plain = instance_name("hubgate {gateway}", id);
    CHECK(plain.size() == 63);
    CHECK(plain == "hubgate " + std::string(55, 'g'));
    const auto with = instance_name("hubgate {gateway}", id, "sensors");
    CHECK(with.size() == 63);
    CHECK(with.substr(with.size() - 10) == " (sensors)");
    CHECK(with == "hubgate " + std::string(45, 'g') + " (sensors)");
}

TEST_CASE("an instance name of exactly 63 bytes is kept whole") {
    const std::string name(63, 'x');
    CHECK(instance_name(name, "gw") == name);
    CHECK(instance_name(std::string(64, 'x'), "gw") == std::string(63, 'x'));
}

TEST_CASE("truncation never splits a UTF-8 character") {
    // "ü" is 2 bytes, "水" 3, "😀" 4: cut at every length around them
    const std::string text = "Gerät 水 😀 Küche " + std::string(60, 'a');
    for (std::size_t max = 0; max <= text.size(); ++max) {
        const auto cut = truncate_utf8(text, max);
        CHECK(cut.size() <= max);
        CHECK(valid_utf8_prefix(cut));
        CHECK(text.compare(0, cut.size(), cut) == 0);
        CHECK(max - cut.size() < 4);  // at most one character (<= 4 bytes) given up
    }
    const std::string emoji_base = std::string(61, 'a') + "😀";  // 65 bytes: the emoji straddles 63
    CHECK(instance_name(emoji_base, "gw") == std::string(61, 'a'));
}

TEST_CASE("a cut base loses its trailing spaces before the suffix") {
    const std::string pattern = std::string(52, 'a') + "      zzzz";  // the cut lands in the spaces
    const auto name = instance_name(pattern, "gw", "lan");
    CHECK(name == std::string(52, 'a') + " (lan)");
}

TEST_CASE("a very long suffix is cut with the name") {
    const auto name = instance_name("hubgate {gateway}", "gw-01", std::string(80, 's'));
    CHECK(name.size() == 63);
    CHECK(name.rfind("hubgate gw-01 (sss", 0) == 0);
}

TEST_CASE("a wildcard address is advertised on all interfaces") {
    auto v4 = place("0.0.0.0", kInterfaces);
    CHECK(v4.kind == Placement::Kind::all_interfaces);
    CHECK(v4.family == AF_INET);
    auto v6 = place("::", kInterfaces);
    CHECK(v6.kind == Placement::Kind::all_interfaces);
    CHECK(v6.family == 0);
}

TEST_CASE("loopback addresses are never advertised") {
    for (const char* host : {"127.0.0.1", "127.0.0.53", "::1", "localhost", "::ffff:127.0.0.1", "127.1.2.3"}) {
        CAPTURE(host);
        const auto p = place(host, kInterfaces);
        CHECK(p.kind == Placement::Kind::skip);
        CHECK(p.why.find("loopback") != std::string::npos);
    }
}

TEST_CASE("a listener bound to one address is advertised on the interface that owns it") {
    auto p = place("192.168.1.5", kInterfaces);
    CHECK(p.kind == Placement::Kind::one_interface);
    CHECK(p.interface == "eth0");
    CHECK(p.index == 2);
    CHECK(p.family == AF_INET);
    p = place("10.0.0.7", kInterfaces);
    CHECK(p.interface == "wlan0");
    CHECK(p.index == 3);
}

TEST_CASE("a scoped IPv6 link-local address picks its own interface") {
    auto p = place("fe80::1%3", kInterfaces);
    CHECK(p.kind == Placement::Kind::one_interface);
    CHECK(p.interface == "wlan0");
    CHECK(p.family == AF_INET6);
    p = place("fe80::1%2", kInterfaces);
    CHECK(p.interface == "eth0");
}

TEST_CASE("an address on a loopback interface is not advertised") {
    const auto p = place("169.254.9.9", kInterfaces);
    CHECK(p.kind == Placement::Kind::skip);
    CHECK(p.why == "bound to an address of loopback interface lo1");
}

TEST_CASE("an address no interface owns is not advertised, with the reason") {
    const auto p = place("192.168.9.9", kInterfaces);
    CHECK(p.kind == Placement::Kind::skip);
    CHECK(p.why == "no interface has the address 192.168.9.9");
}

TEST_CASE("the plan advertises each listener not on loopback, with its TXT auth") {
    const std::vector<config::Listener> ls{
        listener(config::Protocol::mqtt, "0.0.0.0", 1883),
        listener(config::Protocol::mqtt, "127.0.0.1", 1884),
        listener(config::Protocol::coaps, "192.168.1.5", 5684, "", config::ListenerAuth::psk),
    };
    const auto plan = plan_services(ls, {1883, 1884, 5684}, "hubgate {gateway}", "gw-01", kInterfaces);
    REQUIRE(plan.services.size() == 2);
    CHECK(plan.services[0].type == "_mqtt._tcp");
    CHECK(plan.services[0].name == "hubgate gw-01");  // the loopback one does not count as a second
    CHECK(plan.services[0].port == 1883);
    CHECK(plan.services[0].auth == "sas");
    CHECK(plan.services[1].type == "_coaps._udp");
    CHECK(plan.services[1].where.interface == "eth0");
    CHECK(plan.services[1].auth == "psk");
    REQUIRE(plan.skipped.size() == 1);
    CHECK(plan.skipped[0] == "listener 127.0.0.1:1884 (bound to loopback)");
}

TEST_CASE("two listeners of one service type get their name or port appended") {
    const std::vector<config::Listener> ls{
        listener(config::Protocol::mqtt, "0.0.0.0", 1883, "lan"),
        listener(config::Protocol::mqtt, "0.0.0.0", 0),
        listener(config::Protocol::coap, "0.0.0.0", 5683),
    };
    const auto plan = plan_services(ls, {1883, 40001, 5683}, "hubgate {gateway}", "gw-01", kInterfaces);
    REQUIRE(plan.services.size() == 3);
    CHECK(plan.services[0].name == "hubgate gw-01 (lan)");
    CHECK(plan.services[1].name == "hubgate gw-01 (40001)");  // the actual port of a port-0 listener
    CHECK(plan.services[1].port == 40001);
    CHECK(plan.services[2].name == "hubgate gw-01");
}

TEST_CASE("the listeners' ports come from the MQTT and CoAP servers in listener order") {
    const std::vector<config::Listener> ls{
        listener(config::Protocol::coap, "0.0.0.0", 0), listener(config::Protocol::mqtt, "0.0.0.0", 0),
        listener(config::Protocol::mqtts, "0.0.0.0", 8883), listener(config::Protocol::coaps, "0.0.0.0", 0)};
    CHECK(listener_ports(ls, {1000, 8883}, {2000, 3000}) == std::vector<std::uint16_t>{2000, 1000, 8883, 3000});
}

TEST_CASE("the TXT items are gw, auth and pair") {
    CHECK(txt_items("gw-01", "sas", false) == std::vector<std::string>{"gw=gw-01", "auth=sas", "pair=closed"});
    CHECK(txt_items("gw-01", "none", true) == std::vector<std::string>{"gw=gw-01", "auth=none", "pair=open"});
}

TEST_CASE("the machine's interfaces include loopback, flagged") {
    const auto all = system_interfaces();
    bool lo = false;
    for (const auto& i : all)
        if (i.address == "127.0.0.1") lo = i.loopback && i.index > 0;
    CHECK(lo);
}

TEST_CASE("without netlink, the IPv4 addresses still come from SIOCGIFCONF") {
    const auto v4 = ipv4_interfaces_ioctl();
    bool lo = false;
    for (const auto& i : v4) {
        CHECK(i.address.find(':') == std::string::npos);
        if (i.address == "127.0.0.1") lo = i.loopback && i.index > 0 && !i.interface.empty();
    }
    CHECK(lo);
}
