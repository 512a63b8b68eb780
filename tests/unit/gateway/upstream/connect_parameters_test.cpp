#include <doctest/doctest.h>

#include "gateway/metrics/registry.hpp"
#include "gateway/model/sas_token.hpp"
#include "gateway/upstream/upstream_client.hpp"

using namespace hubgate;
using namespace hubgate::upstream;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr std::int64_t kNow = 1700000000;

config::Upstream azure_upstream() {
    config::Upstream u;
    u.profile = config::UpstreamProfile::azure_iot_hub;
    u.connection_string = ConnectionString{"myhub.azure-devices.net", "gw-01", kKey, ""};
    u.gateway_device_id = "gw-01";
    return u;
}

config::Upstream mqtt_upstream() {
    config::Upstream u;
    u.profile = config::UpstreamProfile::mqtt;
    u.url = "tcp://127.0.0.1:1883";
    return u;
}

}  // namespace

TEST_CASE("azure-iot-hub: TLS on 8883 to HostName with client id DeviceId and the IoT Hub username with api-version") {
    const auto p = connect_parameters(azure_upstream(), kNow);
    REQUIRE(p.ok());
    CHECK(p->uri == "ssl://myhub.azure-devices.net:8883");
    CHECK(p->client_id == "gw-01");
    CHECK(p->username == "myhub.azure-devices.net/gw-01/?api-version=2021-04-12");
}

TEST_CASE("azure-iot-hub: the password is a SAS token for {HostName}/devices/{DeviceId} that verifies with the key") {
    const auto p = connect_parameters(azure_upstream(), kNow, 3600s);
    REQUIRE(p.ok());
    const auto token = parse_sas_token(p->password);
    REQUIRE(token.ok());
    CHECK(token->sr == "myhub.azure-devices.net/devices/gw-01");
    CHECK(token->se == kNow + 3600);
    CHECK(p->expires_at == kNow + 3600);
    CHECK(verify_sas_token(*token, kKey, kNow) == SasCheck::ok);
    CHECK(verify_sas_token(*token, "b3RoZXIga2V5", kNow) == SasCheck::bad_signature);
}

TEST_CASE("azure-iot-hub: each connect gets a fresh token whose expiry moves with now") {
    const auto first = connect_parameters(azure_upstream(), kNow, 600s);
    const auto later = connect_parameters(azure_upstream(), kNow + 500, 600s);
    REQUIRE(first.ok());
    REQUIRE(later.ok());
    CHECK(first->password != later->password);
    // The first token is expired by the time the second would still be valid.
    CHECK(verify_sas_token(*parse_sas_token(first->password), kKey, kNow + 600) == SasCheck::expired);
    CHECK(verify_sas_token(*parse_sas_token(later->password), kKey, kNow + 600) == SasCheck::ok);
}

TEST_CASE("azure-iot-hub: ca_file is passed on for the TLS connection") {
    auto u = azure_upstream();
    u.ca_file = "/etc/hubgate/ca.pem";
    const auto p = connect_parameters(u, kNow);
    REQUIRE(p.ok());
    CHECK(p->ca_file == "/etc/hubgate/ca.pem");
}

TEST_CASE("azure-iot-hub without a connection string is refused with a reason naming it") {
    auto u = azure_upstream();
    u.connection_string.reset();
    const auto p = connect_parameters(u, kNow);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().find("connection_string") != std::string::npos);
}

TEST_CASE("mqtt profile: url and username and password are used as configured with no token expiry") {
    auto u = mqtt_upstream();
    u.url = "ssl://broker.example:8883";
    u.client_id = "edge-7";
    u.username = "user";
    u.password = "secret";
    const auto p = connect_parameters(u, kNow, 3600s, "gw-01");
    REQUIRE(p.ok());
    CHECK(p->uri == "ssl://broker.example:8883");
    CHECK(p->client_id == "edge-7");
    CHECK(p->username == "user");
    CHECK(p->password == "secret");
    CHECK_FALSE(p->expires_at.has_value());
}

TEST_CASE("mqtt profile: the client id defaults to the gateway id") {
    const auto p = connect_parameters(mqtt_upstream(), kNow, 3600s, "gw-42");
    REQUIRE(p.ok());
    CHECK(p->client_id == "gw-42");
}

TEST_CASE("mqtt profile: a url that is not tcp:// or ssl:// is refused") {
    auto u = mqtt_upstream();
    u.url = "http://127.0.0.1:1883";
    const auto p = connect_parameters(u, kNow, 3600s, "gw-01");
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().find("tcp://") != std::string::npos);
}

TEST_CASE("the SAS token is renewed after about 90% of its lifetime and always before it expires") {
    CHECK(sas_renewal_after(3600s) == 3240s);
    CHECK(sas_renewal_after(100s) < 100s);
    CHECK(sas_renewal_after(100s) >= 90s);
    CHECK(sas_renewal_after(1s) == 1s);
}

TEST_CASE("{gw} is the connection string's DeviceId (azure-iot-hub) or the gateway id (mqtt)") {
    metrics::Registry registry;
    auto azure = azure_upstream();
    azure.gateway_device_id.clear();
    UpstreamClient a(ClientOptions{.upstream = azure, .gateway_id = "ignored"}, registry);
    CHECK(a.gateway_device_id() == "gw-01");
    UpstreamClient m(ClientOptions{.upstream = mqtt_upstream(), .gateway_id = "gw-09"}, registry);
    CHECK(m.gateway_device_id() == "gw-09");
    CHECK_FALSE(m.connected());
}
