#include <doctest/doctest.h>

#include <string>

#include "gateway/model/connection_string.hpp"

using hubgate::parse_connection_string;

namespace {

// base64 of 32 bytes, like the keys IoT Hub generates.
const std::string kKey = "aHViZ2F0ZS1leGFtcGxlLWtleS1ub3QtYS1zZWNyZXQ=";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a device connection string yields HostName, DeviceId and SharedAccessKey, ModuleId empty") {
    auto cs = parse_connection_string("HostName=hub.azure-devices.net;DeviceId=gw-01;SharedAccessKey=" + kKey);
    REQUIRE(cs.ok());
    CHECK(cs->host_name == "hub.azure-devices.net");
    CHECK(cs->device_id == "gw-01");
    CHECK(cs->shared_access_key == kKey);
    CHECK(cs->module_id.empty());
}

TEST_CASE("the keys may come in any order and ModuleId is read when present") {
    auto cs = parse_connection_string("ModuleId=m1;SharedAccessKey=" + kKey + ";DeviceId=d;HostName=h.example");
    REQUIRE(cs.ok());
    CHECK(cs->module_id == "m1");
    CHECK(cs->device_id == "d");
    CHECK(cs->host_name == "h.example");
}

TEST_CASE("values split on the first '=' so base64 padding stays in the key") {
    const std::string key = "AAECAwQFBgcICQoLDA0ODw==";  // 16 bytes, two padding characters
    auto cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=" + key);
    REQUIRE(cs.ok());
    CHECK(cs->shared_access_key == key);
}

TEST_CASE("empty segments and a trailing semicolon are tolerated") {
    auto cs = parse_connection_string(";HostName=h;;DeviceId=d;SharedAccessKey=" + kKey + ";");
    REQUIRE(cs.ok());
    CHECK(cs->device_id == "d");
}

TEST_CASE("to_string round-trips, with and without ModuleId") {
    for (const std::string& text : {"HostName=hub.azure-devices.net;DeviceId=gw-01;SharedAccessKey=" + kKey,
                                   "HostName=hub.azure-devices.net;DeviceId=gw-01;SharedAccessKey=" + kKey +
                                       ";ModuleId=edge"}) {
        auto cs = parse_connection_string(text);
        REQUIRE(cs.ok());
        CHECK(cs->to_string() == text);
        auto again = parse_connection_string(cs->to_string());
        REQUIRE(again.ok());
        CHECK(again->to_string() == text);
    }
}

TEST_CASE("each required key missing is refused by name") {
    auto no_host = parse_connection_string("DeviceId=d;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(no_host.ok());
    CHECK(contains(no_host.error(), "HostName"));

    auto no_device = parse_connection_string("HostName=h;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(no_device.ok());
    CHECK(contains(no_device.error(), "DeviceId"));

    auto no_key = parse_connection_string("HostName=h;DeviceId=d");
    REQUIRE_FALSE(no_key.ok());
    CHECK(contains(no_key.error(), "SharedAccessKey"));
}

TEST_CASE("an unknown key is refused and named") {
    auto cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=" + kKey + ";GatewayHostName=x");
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "GatewayHostName"));
}

TEST_CASE("keys are case-sensitive: hostname is not HostName") {
    auto cs = parse_connection_string("hostname=h;DeviceId=d;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "hostname"));
}

TEST_CASE("a SharedAccessKey that is not base64 is refused with a base64 reason") {
    auto cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=not base64!");
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "SharedAccessKey"));
    CHECK(contains(cs.error(), "base64"));
}

TEST_CASE("a segment without '=' is refused") {
    auto cs = parse_connection_string("HostName=h;DeviceId;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "DeviceId"));
    CHECK(contains(cs.error(), "Key=Value"));
}

TEST_CASE("a key given twice is refused") {
    auto cs = parse_connection_string("HostName=h;DeviceId=a;DeviceId=b;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "twice"));
}

TEST_CASE("an empty value is refused") {
    auto cs = parse_connection_string("HostName=;DeviceId=d;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "HostName is empty"));
}

TEST_CASE("a DeviceId outside IoT Hub's device id charset is refused") {
    auto cs = parse_connection_string("HostName=h;DeviceId=bad id;SharedAccessKey=" + kKey);
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "DeviceId"));
}

TEST_CASE("an empty string is refused for lacking HostName") {
    auto cs = parse_connection_string("");
    REQUIRE_FALSE(cs.ok());
    CHECK(contains(cs.error(), "lacks HostName"));
}
