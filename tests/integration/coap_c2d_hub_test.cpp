// C2D over CoAP end to end: mosquitto plays the hub and publishes cloud-to-device messages to a real
// `hubgate run` with a `coap` and a `coaps` listener; coap-client-openssl plays the device (GET under
// an ETag lock, DELETE / reject / abandon), and the feedback the hub gets back is decoded and checked.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "gateway/model/property_bag.hpp"
#include "tests/support/coap_client.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "Y29hcC1jMmQtaHViLXRlc3Qta2V5LTAxMjM0NTY3OA==";

// A hub with a listener, and a gateway with a plain `coap` listener (auth none), a `coaps` listener
// (DTLS-PSK) and devices dev-1, dev-2 sharing kKey.
struct CoapC2dRig : C2dHub {
    explicit CoapC2dRig(int max_delivery_count = 3) {
        std::string extra = listener_toml("coap", coap_port, "none", "coap") + listener_toml("coaps", coaps_port, "psk");
        extra += device_toml("dev-1", kKey) + device_toml("dev-2", kKey);
        extra += "[c2d]\nmax_delivery_count = " + std::to_string(max_delivery_count) + "\nfeedback_max_delay_ms = 200\n\n";
        start_gateway(extra);
    }

    std::string devicebound(const std::string& device, bool dtls = false) const {
        return std::string(dtls ? "coaps" : "coap") + "://127.0.0.1:" + std::to_string(dtls ? coaps_port : coap_port) +
               "/devices/" + device + "/messages/devicebound";
    }
    std::vector<std::string> psk(const std::string& device) const { return {"-u", device, "-k", kKey}; }

    // GETs until an answer carries a lock (the first GET of a device may come back empty while the
    // relay looks up its queue), for at most 10 s; the last answer either way.
    RunResult get_locked(const std::string& device, bool dtls = false) {
        RunResult r;
        eventually(
            [&] {
                r = coap_client("get", devicebound(device, dtls), dtls ? psk(device) : std::vector<std::string>{});
                return !etag_of(r).empty();
            },
            10s);
        return r;
    }

    std::uint16_t coap_port = free_udp_port();
    std::uint16_t coaps_port = free_udp_port();
};

// The message as the device sees it: option 65000's property bag applied.
HubMessage served(const RunResult& r) {
    HubMessage m;
    const auto err = apply_property_bag(properties_of(r), m);
    CHECK_MESSAGE(!err, "bad property bag in option 65000: " << properties_of(r));
    return m;
}

}  // namespace

TEST_SUITE("coap c2d via hub") {

TEST_CASE("a hub's C2D message is served to a CoAP GET with its lock and properties, and DELETE gives the hub "
          "Success feedback") {
    CoapC2dRig rig;
    rig.send(C2dSend("coap-c2d-1", "dev-1", "full").with_body("valve open").with_property("zone", "north"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == 1; }, 10s));

    const auto got = rig.get_locked("dev-1");
    INFO(got.output);
    CHECK(has_code(got, "2.05"));
    CHECK(has(got, "valve open"));
    const auto lock = etag_of(got);
    REQUIRE(lock.size() == 16);
    const auto m = served(got);
    CHECK(m.system.message_id == "coap-c2d-1");
    const auto* zone = m.properties.find("zone");
    CHECK((zone && zone->value == std::optional<std::string>("north")));

    const auto del = coap_client("delete", rig.devicebound("dev-1") + "/" + lock);
    INFO(del.output);
    CHECK(has_code(del, "2.02"));
    const auto fb = rig.wait_feedback("coap-c2d-1", "Success");
    REQUIRE_MESSAGE(fb, "no Success feedback reached the hub");
    CHECK(fb->device_id == "dev-1");
    // Completed: nothing is served any more.
    CHECK(etag_of(coap_client("get", rig.devicebound("dev-1"))).empty());
}

TEST_CASE("DELETE with ?reject gives the hub Rejected feedback") {
    CoapC2dRig rig;
    rig.send(C2dSend("coap-c2d-rej", "dev-1", "full"));
    const auto lock = etag_of(rig.get_locked("dev-1"));
    REQUIRE(lock.size() == 16);
    const auto del = coap_client("delete", rig.devicebound("dev-1") + "/" + lock + "?reject");
    INFO(del.output);
    CHECK(has_code(del, "2.02"));
    const auto fb = rig.wait_feedback("coap-c2d-rej", "Rejected");
    REQUIRE_MESSAGE(fb, "no Rejected feedback reached the hub");
    CHECK(fb->device_id == "dev-1");
}

TEST_CASE("an abandoned message is served again under a new lock and after max_delivery_count deliveries the hub "
          "gets DeliveryCountExceeded") {
    CoapC2dRig rig(2);
    rig.send(C2dSend("coap-c2d-abandon", "dev-1", "full"));
    const auto first = rig.get_locked("dev-1");
    const auto lock1 = etag_of(first);
    REQUIRE(lock1.size() == 16);
    const auto ab = coap_client("post", rig.devicebound("dev-1") + "/" + lock1 + "/abandon");
    INFO(ab.output);
    CHECK(has_code(ab, "2.04"));

    const auto second = rig.get_locked("dev-1");
    INFO(second.output);
    const auto lock2 = etag_of(second);
    REQUIRE(lock2.size() == 16);
    CHECK(lock2 != lock1);
    CHECK(served(second).system.message_id == "coap-c2d-abandon");
    CHECK(has_code(coap_client("post", rig.devicebound("dev-1") + "/" + lock2 + "/abandon"), "2.04"));

    const auto fb = rig.wait_feedback("coap-c2d-abandon", "DeliveryCountExceeded");
    REQUIRE_MESSAGE(fb, "no DeliveryCountExceeded feedback after two abandons");
    CHECK(fb->device_id == "dev-1");
    CHECK(etag_of(coap_client("get", rig.devicebound("dev-1"))).empty());
}

TEST_CASE("over coaps a device completes its own message with Success feedback and cannot read another device's") {
    CoapC2dRig rig;
    rig.send(C2dSend("coap-c2d-dtls", "dev-1", "full").with_body("secure"));
    rig.send(C2dSend("coap-c2d-other", "dev-2", "full").with_body("for dev-2 only"));
    REQUIRE(eventually([&] { return rig.c2d_metric("queued") == 2; }, 10s));

    const auto spoof = coap_client("get", rig.devicebound("dev-2", true), rig.psk("dev-1"));
    INFO(spoof.output);
    CHECK(has_code(spoof, "4.03"));
    CHECK(!has(spoof, "for dev-2 only"));

    const auto got = rig.get_locked("dev-1", true);
    INFO(got.output);
    CHECK(has(got, "secure"));
    const auto lock = etag_of(got);
    REQUIRE(lock.size() == 16);
    CHECK(has_code(coap_client("delete", rig.devicebound("dev-1", true) + "/" + lock, rig.psk("dev-1")), "2.02"));
    REQUIRE_MESSAGE(rig.wait_feedback("coap-c2d-dtls", "Success"), "no Success feedback reached the hub");
}

TEST_CASE("a message locked by a CoAP device when the gateway is SIGKILLed is served again after the restart and "
          "completes") {
    CoapC2dRig rig;
    rig.send(C2dSend("coap-c2d-crash", "dev-1", "full").with_body("survive"));
    const auto lock = etag_of(rig.get_locked("dev-1"));
    REQUIRE(lock.size() == 16);

    rig.gw->kill();
    rig.gw->start();
    rig.wait_ready_and_upstream();

    // The old lock died with the process.
    CHECK(has_code(coap_client("delete", rig.devicebound("dev-1") + "/" + lock), "4.04"));
    const auto again = rig.get_locked("dev-1");
    INFO(again.output);
    CHECK(has(again, "survive"));
    CHECK(served(again).system.message_id == "coap-c2d-crash");
    const auto lock2 = etag_of(again);
    REQUIRE(lock2.size() == 16);
    CHECK(has_code(coap_client("delete", rig.devicebound("dev-1") + "/" + lock2), "2.02"));
    REQUIRE_MESSAGE(rig.wait_feedback("coap-c2d-crash", "Success"), "no Success feedback after the restart");
}

}  // TEST_SUITE
