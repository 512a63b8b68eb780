// The gateway's `invoke` method: its request and the answer's body (docs/twins.md).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/twins/methods.hpp"

using namespace hubgate::twins;
using nlohmann::json;

TEST_SUITE("twins") {

TEST_CASE("an invoke request names the device, the method, the payload and the timeout") {
    auto r = parse_invoke(R"({"deviceId":"d.1","methodName":"reboot","payload":{"delay":5},"responseTimeoutInSeconds":12})");
    REQUIRE(r.ok());
    CHECK(r->device_id == "d.1");
    CHECK(r->method_name == "reboot");
    CHECK(json::parse(r->payload) == json::parse(R"({"delay":5})"));
    CHECK(r->timeout == std::chrono::seconds(12));
    r = parse_invoke(R"({"deviceId":"d","methodName":"m"})");
    REQUIRE(r.ok());
    CHECK(r->payload == "null");
    CHECK(r->timeout == std::chrono::seconds(kDefaultMethodTimeoutSeconds));
    CHECK(parse_invoke(R"({"deviceId":"d","methodName":"m","responseTimeoutInSeconds":9999})")->timeout ==
          std::chrono::seconds(kMaxMethodTimeoutSeconds));
}

TEST_CASE("an invoke request without a device or method, or with a topic character in the method, is refused") {
    CHECK_FALSE(parse_invoke("nope").ok());
    CHECK_FALSE(parse_invoke(R"({"methodName":"m"})").ok());
    CHECK_FALSE(parse_invoke(R"({"deviceId":"d"})").ok());
    CHECK_FALSE(parse_invoke(R"({"deviceId":"d","methodName":"a/b"})").ok());
    CHECK_FALSE(parse_invoke(R"({"deviceId":"d","methodName":"m","responseTimeoutInSeconds":"5"})").ok());
}

TEST_CASE("the answer carries the device's status and its payload, as JSON when it is JSON") {
    CHECK(json::parse(invoke_answer(200, R"({"ok":true})")) == json::parse(R"({"status":200,"payload":{"ok":true}})"));
    CHECK(json::parse(invoke_answer(500, "not json")) == json::parse(R"({"status":500,"payload":"not json"})"));
    CHECK(json::parse(invoke_answer(204, "")) == json::parse(R"({"status":204,"payload":null})"));
    CHECK(json::parse(invoke_error(504, "late")) == json::parse(R"({"status":504,"payload":{"message":"late"}})"));
}

}  // TEST_SUITE
