// CoAP through the real `hubgate run`: coap-client-openssl -> coap listener -> store, durable.
#include <doctest/doctest.h>

#include <csignal>

#include "tests/support/coap_client.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/store_contents.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

TEST_CASE("a CoAP POST to a running gateway is answered 2.04 and is in the store after a SIGKILL") {
    TempDir dir;
    const auto metrics_port = free_tcp_port();
    const auto coap_port = free_udp_port();
    std::string listener = "[[listener]]\nprotocol = \"coap\"\nbind = \"127.0.0.1:" + std::to_string(coap_port) +
                           "\"\nauth = \"none\"\nmodule_id = \"coap-in\"\n\n";
    Gateway gw(dir, minimal_config(dir, metrics_port, listener), metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    const std::string uri = "coap://127.0.0.1:" + std::to_string(coap_port) +
                            "/devices/sensor-7/messages/events?%24.mid=c-1&room=lab";
    const auto r = coap_client("post", uri, {"-t", "50", "-e", "{\"t\":21.5}"});
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    gw.process().signal(SIGKILL);
    gw.process().wait(10s);
    const auto stored = stored_messages(dir.file("hubgate.db"));
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].device_id == "sensor-7");
    CHECK(stored[0].module_id == "coap-in");
    CHECK(stored[0].system.message_id == "c-1");
    CHECK(stored[0].system.content_type == "application/json");
    CHECK(stored[0].body == "{\"t\":21.5}");
    REQUIRE(stored[0].properties.find("room") != nullptr);
    CHECK(*stored[0].properties.find("room")->value == "lab");
}
