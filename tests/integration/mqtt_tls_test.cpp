// Device-facing MQTT over TLS (mqtts listener): a CA and a server certificate for 127.0.0.1 made
// by the test with the openssl CLI; real clients verify the server against that CA and publish.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/mqtt/codec.hpp"
#include "tests/support/certificates.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
namespace codec = hubgate::mqtt;  // ::mqtt is Paho's namespace

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct TlsGateway {
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t port = free_tcp_port();
    std::unique_ptr<Gateway> gw;

    TlsGateway() {
        make_certificates(dir);
        const std::string tls = "tls_cert = \"" + dir.file("server.crt") + "\"\ntls_key = \"" + dir.file("server.key") + "\"\n";
        const std::string extra = listener_toml("mqtts", port, "sas", {}, tls) + device_toml("dev-tls", kKey);
        gw = std::make_unique<Gateway>(dir, minimal_config(dir, metrics_port, extra), metrics_port);
        REQUIRE_MESSAGE(gw->wait_ready(), gw->process().output());
    }
};

}  // namespace

TEST_CASE("mosquitto_pub and Paho publish over an mqtts listener verified against the test's CA, and both are stored") {
    TlsGateway g;
    const auto token = device_token("dev-tls", kKey);
    const auto r = mosquitto_pub(g.port, "dev-tls", token,
                                 {"--cafile", g.dir.file("ca.crt"), "-q", "1", "-m", "over tls (mosquitto)", "-t",
                                  "devices/dev-tls/messages/events/%24.mid=tls-mosquitto"});
    CHECK_MESSAGE(r.exit_code == 0, r.output);

    PahoDevice dev("ssl://127.0.0.1:" + std::to_string(g.port), "dev-tls", token, g.dir.file("ca.crt"));
    REQUIRE(dev.connect() == 0);
    CHECK(dev.publish("devices/dev-tls/messages/events/%24.mid=tls-paho", "over tls (paho)", 1));
    dev.disconnect();

    REQUIRE_MESSAGE(g.gw->stop() == 0, g.gw->process().output());
    const auto stored = stored_messages(g.dir.file("hubgate.db"));
    const auto* m1 = find_by_message_id(stored, "tls-mosquitto");
    const auto* m2 = find_by_message_id(stored, "tls-paho");
    REQUIRE(m1 != nullptr);
    REQUIRE(m2 != nullptr);
    CHECK(m1->body == "over tls (mosquitto)");
    CHECK(m2->body == "over tls (paho)");
    CHECK(m2->device_id == "dev-tls");
}

TEST_CASE("a plain-TCP MQTT client on the TLS port gets no CONNACK and is disconnected") {
    TlsGateway g;
    RawSocket s(g.port);
    codec::ConnectPacket c;
    c.client_id = "dev-tls";
    codec::Buffer connect;
    REQUIRE(codec::encode_connect(connect, c));
    REQUIRE(s.send(connect));
    const auto reply = s.receive(5s, 1 << 20);
    // A TLS alert may come back; an MQTT CONNACK (0x20) must not.
    CHECK((reply.empty() || reply[0] != 0x20));
    CHECK(s.closed_by_peer(5s));
    CHECK(g.gw->metric("hubgate_mqtt_protocol_errors_total{reason=\"tls_handshake\"}") == 1);
}
