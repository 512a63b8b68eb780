// The pure CoAP telemetry mapping: path -> device, query -> properties, Content-Format -> type.
#include <doctest/doctest.h>

#include "adapters/coap/coap_paths.hpp"
#include "gateway/model/message_id.hpp"

using namespace hubgate;
using namespace hubgate::coap;

TEST_CASE("devices/{id}/messages/events names the telemetry resource of that device") {
    auto m = match_path("devices/sensor-1/messages/events");
    CHECK(m.kind == PathMatch::Kind::telemetry);
    CHECK(m.device_id == "sensor-1");
    CHECK(match_path("/devices/sensor-1/messages/events/").kind == PathMatch::Kind::telemetry);
}

TEST_CASE("a telemetry path whose device id breaks the id rule is a bad device id") {
    CHECK(match_path("devices/bad id/messages/events").kind == PathMatch::Kind::bad_device_id);
    CHECK(match_path("devices//messages/events").kind == PathMatch::Kind::bad_device_id);
}

TEST_CASE("paths of any other shape are not found") {
    CHECK(match_path("").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/x/messages").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/x/messages/events/more").kind == PathMatch::Kind::not_found);
    CHECK(match_path("things/x/messages/events").kind == PathMatch::Kind::not_found);
}

TEST_CASE("devices/{id}/messages/devicebound names the C2D queue of that device") {
    auto m = match_path("devices/sensor-1/messages/devicebound");
    CHECK(m.kind == PathMatch::Kind::devicebound);
    CHECK(m.device_id == "sensor-1");
    CHECK(m.lock.empty());
}

TEST_CASE("devicebound/{lock} names a lock given as the lowercase hex of the ETag bytes") {
    auto m = match_path("devices/sensor-1/messages/devicebound/00a1ff");
    CHECK(m.kind == PathMatch::Kind::c2d_lock);
    CHECK(m.device_id == "sensor-1");
    CHECK(m.lock == std::string("\x00\xa1\xff", 3));
}

TEST_CASE("devicebound/{lock}/abandon names the abandon action of that lock") {
    auto m = match_path("devices/sensor-1/messages/devicebound/0102030405060708/abandon");
    CHECK(m.kind == PathMatch::Kind::c2d_abandon);
    CHECK(m.lock == "\x01\x02\x03\x04\x05\x06\x07\x08");
}

TEST_CASE("a lock that is not 1 to 8 bytes of lowercase hex is not found") {
    CHECK(match_path("devices/d/messages/devicebound/ABCD").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/messages/devicebound/abc").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/messages/devicebound/zz").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/messages/devicebound/010203040506070809").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/messages/devicebound/0102/other").kind == PathMatch::Kind::not_found);
}

TEST_CASE("a devicebound path whose device id breaks the id rule is a bad device id") {
    CHECK(match_path("devices/bad id/messages/devicebound").kind == PathMatch::Kind::bad_device_id);
    CHECK(match_path("devices/bad id/messages/devicebound/01").kind == PathMatch::Kind::bad_device_id);
}

TEST_CASE("lock_to_hex and lock_from_hex are inverse") {
    const std::string lock("\x00\x7f\x80\xff\x10\x20\x30\x40", 8);
    CHECK(lock_to_hex(lock) == "007f80ff10203040");
    CHECK(lock_from_hex(lock_to_hex(lock)) == lock);
}

TEST_CASE("registered Content-Formats map to their media types and others pass through as vnd.coap.cf.N") {
    CHECK(content_type_for_format(0) == "text/plain;charset=utf-8");
    CHECK(content_type_for_format(42) == "application/octet-stream");
    CHECK(content_type_for_format(50) == "application/json");
    CHECK(content_type_for_format(60) == "application/cbor");
    CHECK(content_type_for_format(110) == "application/senml+json");
    CHECK(content_type_for_format(112) == "application/senml+cbor");
    CHECK(content_type_for_format(11542) == "application/vnd.coap.cf.11542");
}

TEST_CASE("query parameters become application properties and $.mid keys system properties") {
    MessageIdGenerator ids;
    TelemetryRequest r;
    r.device_id = "d1";
    r.module_id = "m1";
    r.query = "temp=21.5&%24.mid=abc&alarm";
    r.content_format = 50;
    r.body = "{}";
    auto b = build_telemetry(r, ids);
    REQUIRE(b.message);
    CHECK(b.message->device_id == "d1");
    CHECK(b.message->module_id == "m1");
    CHECK(b.message->system.message_id == "abc");
    CHECK(b.message->system.content_type == "application/json");
    REQUIRE(b.message->properties.find("temp"));
    CHECK(b.message->properties.find("temp")->value == "21.5");
    REQUIRE(b.message->properties.find("alarm"));
    CHECK_FALSE(b.message->properties.find("alarm")->value.has_value());
}

TEST_CASE("a $.ct in the query wins over the Content-Format option") {
    MessageIdGenerator ids;
    TelemetryRequest r;
    r.device_id = "d1";
    r.query = "$.ct=text%2Fcsv";
    r.content_format = 50;
    auto b = build_telemetry(r, ids);
    REQUIRE(b.message);
    CHECK(b.message->system.content_type == "text/csv");
}

TEST_CASE("a malformed query is refused with 4.00") {
    MessageIdGenerator ids;
    TelemetryRequest r;
    r.device_id = "d1";
    r.query = "a=%zz";
    auto b = build_telemetry(r, ids);
    REQUIRE(b.refusal);
    CHECK(b.refusal->code_class == 4);
    CHECK(b.refusal->code_detail == 0);
}

TEST_CASE("a spoofed device-id property is refused with 4.00") {
    MessageIdGenerator ids;
    TelemetryRequest r;
    r.device_id = "d1";
    r.query = "device-id=d2";
    auto b = build_telemetry(r, ids);
    REQUIRE(b.refusal);
    CHECK(b.refusal->code_detail == 0);
}

TEST_CASE("a body over 256 KB is refused with 4.13") {
    MessageIdGenerator ids;
    const std::string big(262145, 'x');
    TelemetryRequest r;
    r.device_id = "d1";
    r.body = big;
    auto b = build_telemetry(r, ids);
    REQUIRE(b.refusal);
    CHECK(b.refusal->code_class == 4);
    CHECK(b.refusal->code_detail == 13);
}

TEST_CASE("devices/{id}/twin, twin/reported and twin/desired name the twin resources of that device") {
    auto m = match_path("devices/thermo-1/twin");
    CHECK(m.kind == PathMatch::Kind::twin);
    CHECK(m.device_id == "thermo-1");
    CHECK(match_path("/devices/thermo-1/twin/reported/").kind == PathMatch::Kind::twin_reported);
    m = match_path("devices/thermo-1/twin/desired");
    CHECK(m.kind == PathMatch::Kind::twin_desired);
    CHECK(m.device_id == "thermo-1");
}

TEST_CASE("twin paths of another shape are not found, and a bad id in one is a bad device id") {
    CHECK(match_path("devices/d/twin/other").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/twin/desired/x").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/d/twins").kind == PathMatch::Kind::not_found);
    CHECK(match_path("devices/bad id/twin").kind == PathMatch::Kind::bad_device_id);
    CHECK(match_path("devices/bad id/twin/reported").kind == PathMatch::Kind::bad_device_id);
}

TEST_CASE("a twin patch without a Content-Format or as application/json or merge-patch+json is taken, others are 4.15") {
    CHECK(!check_twin_patch_format(std::nullopt));
    CHECK(!check_twin_patch_format(50u));
    CHECK(!check_twin_patch_format(52u));
    for (std::uint32_t cf : {0u, 42u, 51u, 60u}) {
        const auto r = check_twin_patch_format(cf);
        REQUIRE(r);
        CHECK(r->code_class == 4);
        CHECK(r->code_detail == 15);
        CHECK(std::string(r->counter_reason) == "bad_format");
    }
}
