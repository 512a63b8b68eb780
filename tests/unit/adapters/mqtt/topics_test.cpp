#include <doctest/doctest.h>

#include "adapters/mqtt/topics.hpp"
#include "gateway/model/hub_message.hpp"

using namespace hubgate;
using namespace hubgate::mqtt;

TEST_CASE("a D2C topic yields the device id and the property bag after events/") {
    const auto t = parse_d2c_topic("devices/dev-1/messages/events/%24.mid=1&k=v");
    REQUIRE(t);
    CHECK(t->device_id == "dev-1");
    CHECK(t->module_id.empty());
    CHECK(t->property_bag == "%24.mid=1&k=v");
}

TEST_CASE("a module D2C topic yields the module id") {
    const auto t = parse_d2c_topic("devices/dev-1/modules/filter/messages/events/a=b");
    REQUIRE(t);
    CHECK(t->device_id == "dev-1");
    CHECK(t->module_id == "filter");
    CHECK(t->property_bag == "a=b");
}

TEST_CASE("the bag may be empty, with or without the trailing slash") {
    CHECK(parse_d2c_topic("devices/d/messages/events/")->property_bag.empty());
    CHECK(parse_d2c_topic("devices/d/messages/events")->property_bag.empty());
}

TEST_CASE("a bag containing slashes is kept whole") {
    CHECK(parse_d2c_topic("devices/d/messages/events/a=x/y&b")->property_bag == "a=x/y&b");
}

TEST_CASE("topics that are not IoT Hub D2C topics are not parsed") {
    CHECK_FALSE(parse_d2c_topic("devices/d/messages/devicebound/x"));
    CHECK_FALSE(parse_d2c_topic("devices//messages/events/"));
    CHECK_FALSE(parse_d2c_topic("telemetry/d"));
    CHECK_FALSE(parse_d2c_topic("devices/d/modules//messages/events/"));
    CHECK_FALSE(parse_d2c_topic("devices/d/messages/eventsX/"));
    CHECK_FALSE(parse_d2c_topic("$iothub/twin/GET/?$rid=1"));
}

TEST_CASE("only the device's own devicebound/# filter is a C2D subscription") {
    CHECK(is_c2d_filter("devices/dev-1/messages/devicebound/#", "dev-1"));
    CHECK_FALSE(is_c2d_filter("devices/dev-2/messages/devicebound/#", "dev-1"));
    CHECK_FALSE(is_c2d_filter("devices/dev-1/messages/devicebound/+", "dev-1"));
    CHECK_FALSE(is_c2d_filter("devices/+/messages/devicebound/#", "dev-1"));
    CHECK_FALSE(is_c2d_filter("#", "dev-1"));
}

TEST_CASE("a C2D topic always has the slash after devicebound, even with no properties") {
    std::string out = "stale";
    HubMessage m;
    format_c2d_topic(out, "dev-1", m);
    CHECK(out == "devices/dev-1/messages/devicebound/");
}

TEST_CASE("a C2D topic carries the message's properties as a bag") {
    std::string out;
    HubMessage m;
    m.system.message_id = "m1";
    m.properties.set("k", std::string("v w"));
    format_c2d_topic(out, "dev-1", m);
    CHECK(out == "devices/dev-1/messages/devicebound/%24.mid=m1&k=v%20w");
}

TEST_CASE("topic filters match as MQTT 3.1.1 §4.7 says: + one level, # the rest and the parent, $ topics not by wildcards") {
    CHECK(topic_matches("cmnd/plug-1/#", "cmnd/plug-1/Power"));
    CHECK(topic_matches("cmnd/plug-1/#", "cmnd/plug-1"));
    CHECK(topic_matches("cmnd/+/Power", "cmnd/plug-1/Power"));
    CHECK_FALSE(topic_matches("cmnd/+/Power", "cmnd/plug-1/Power/x"));
    CHECK(topic_matches("zigbee2mqtt/lamp/set", "zigbee2mqtt/lamp/set"));
    CHECK_FALSE(topic_matches("zigbee2mqtt/lamp/set", "zigbee2mqtt/lamp"));
    CHECK(topic_matches("#", "a/b"));
    CHECK_FALSE(topic_matches("#", "$SYS/x"));
    CHECK_FALSE(topic_matches("+/x", "$SYS/x"));
    CHECK(topic_matches("$SYS/#", "$SYS/x"));
    CHECK(topic_matches("a//+", "a//b"));
    CHECK(topic_matches("+", ""));
    CHECK_FALSE(topic_matches("a/+", "a"));
}

TEST_CASE("a topic filter is valid only with # last and alone, + alone in its level, and not empty") {
    for (const char* ok : {"#", "a/#", "+/+", "a/+/b", "cmnd/plug-1/#", "a//b"}) CHECK(valid_topic_filter(ok));
    for (const char* bad : {"", "a/#/b", "a#", "a/b#", "a+/b", "+a"}) CHECK_FALSE(valid_topic_filter(bad));
}

TEST_CASE("IoT Hub's three twin and method filters are recognised exactly, nothing else") {
    CHECK(twin_filter_bit("$iothub/twin/res/#") == kTwinResponses);
    CHECK(twin_filter_bit("$iothub/twin/PATCH/properties/desired/#") == kTwinDesired);
    CHECK(twin_filter_bit("$iothub/methods/POST/#") == kMethods);
    for (const char* other : {"$iothub/#", "$iothub/twin/#", "$iothub/twin/res/+", "devices/d/messages/devicebound/#", ""})
        CHECK(twin_filter_bit(other) == 0);
}

TEST_CASE("a twin request topic yields its operation and $rid") {
    auto r = parse_twin_request("$iothub/twin/GET/?$rid=42");
    REQUIRE(r);
    CHECK(r->kind == TwinRequest::Kind::get);
    CHECK(r->rid == "42");
    r = parse_twin_request("$iothub/twin/PATCH/properties/reported/?$rid=a-7&$version=3");
    REQUIRE(r);
    CHECK(r->kind == TwinRequest::Kind::patch_reported);
    CHECK(r->rid == "a-7");
    r = parse_twin_request("$iothub/twin/PATCH/properties/desired/?$rid=1");
    REQUIRE(r);
    CHECK(r->kind == TwinRequest::Kind::other);
    CHECK_FALSE(parse_twin_request("devices/d/messages/events/"));
    CHECK_FALSE(parse_twin_request("$iothub/methods/res/200/?$rid=1"));
}
