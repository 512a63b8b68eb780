#include "gateway/model/property_bag.hpp"

#include <doctest/doctest.h>

using namespace hubgate;

TEST_CASE("a property bag splits on '&' and on the first '=' of each entry") {
    const auto bag = parse_property_bag("a=1&b=x=y");
    REQUIRE(bag.ok());
    REQUIRE(bag->size() == 2);
    CHECK((*bag)[0] == BagEntry{"a", "1"});
    CHECK((*bag)[1] == BagEntry{"b", "x=y"});
}

TEST_CASE("a bare key has a null value and `key=` has an empty value") {
    const auto bag = parse_property_bag("bare&empty=");
    REQUIRE(bag.ok());
    REQUIRE(bag->size() == 2);
    CHECK((*bag)[0].key == "bare");
    CHECK_FALSE((*bag)[0].value.has_value());
    CHECK((*bag)[1].key == "empty");
    REQUIRE((*bag)[1].value.has_value());
    CHECK((*bag)[1].value->empty());
}

TEST_CASE("an empty bag and empty entries between '&&' give no entries") {
    CHECK(parse_property_bag("").value().empty());
    const auto bag = parse_property_bag("&a=1&&b=2&");
    REQUIRE(bag.ok());
    CHECK(bag.value() == PropertyBag{{"a", "1"}, {"b", "2"}});
}

TEST_CASE("property bag keys and values are URL-decoded, and '+' stays '+'") {
    const auto bag = parse_property_bag("%24.ct=application%2Fjson&a%20b=1+2");
    REQUIRE(bag.ok());
    CHECK(bag.value() == PropertyBag{{"$.ct", "application/json"}, {"a b", "1+2"}});
}

TEST_CASE("a property bag entry with an empty name is refused") {
    const auto bag = parse_property_bag("a=1&=2");
    REQUIRE_FALSE(bag.ok());
    CHECK(bag.error().find("empty name") != std::string::npos);
}

TEST_CASE("malformed percent-escapes in a bag are refused with their position in the bag") {
    for (const auto& [text, position] : {std::pair{"a=1&b=%", 6}, std::pair{"a=1&b=%4", 6},
                                         std::pair{"a=1&%zz=1", 4}, std::pair{"k=%4g", 2}}) {
        CAPTURE(text);
        const auto bag = parse_property_bag(text);
        REQUIRE_FALSE(bag.ok());
        CHECK(bag.error().find("percent-escape at position " + std::to_string(position)) != std::string::npos);
    }
}

TEST_CASE("format_property_bag URL-encodes keys and values and writes a null value as a bare key") {
    const PropertyBag bag{{"$.ct", "application/json"}, {"bare", std::nullopt}, {"empty", ""}, {"a b", "1+2"}};
    CHECK(format_property_bag(bag) == "%24.ct=application%2Fjson&bare&empty=&a%20b=1%2B2");
}

TEST_CASE("parse_property_bag(format_property_bag(x)) == x, including odd bytes") {
    std::string all_bytes;
    for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
    const PropertyBag bag{{"k&=%", "v&=%+"},
                          {all_bytes, all_bytes},
                          {"null", std::nullopt},
                          {"empty", ""},
                          {std::string("\x00", 1), std::string("\xff\xfe", 2)},
                          {"$.mid", "%24"}};
    const auto parsed = parse_property_bag(format_property_bag(bag));
    REQUIRE(parsed.ok());
    CHECK(parsed.value() == bag);
}

TEST_CASE("system property keys map to their members and other keys do not") {
    CHECK(system_property_for_key("$.mid") == &SystemProperties::message_id);
    CHECK(system_property_for_key("$.cid") == &SystemProperties::correlation_id);
    CHECK(system_property_for_key("$.uid") == &SystemProperties::user_id);
    CHECK(system_property_for_key("$.ct") == &SystemProperties::content_type);
    CHECK(system_property_for_key("$.ce") == &SystemProperties::content_encoding);
    CHECK(system_property_for_key("$.ctime") == &SystemProperties::creation_time);
    CHECK(system_property_for_key("$.exp") == &SystemProperties::absolute_expiry_time);
    CHECK(system_property_for_key("$.to") == &SystemProperties::to);
    CHECK(system_property_for_key("$.xyz") == nullptr);
    CHECK(system_property_for_key("%24.mid") == nullptr);  // keys are looked up after decoding
    CHECK(system_property_for_key("mid") == nullptr);
}

TEST_CASE("apply_property_bag sets system properties from both $. and %24. keys") {
    HubMessage m;
    REQUIRE_FALSE(apply_property_bag("$.mid=m1&%24.cid=c1&$.uid=u&%24.ct=application%2Fjson&$.ce=utf-8"
                                     "&$.ctime=2026-11-23T17%3A00%3A00Z&%24.exp=2026-11-24T17:00:00Z&$.to=%2Fdevices%2Fd",
                                     m));
    CHECK(m.system.message_id == "m1");
    CHECK(m.system.correlation_id == "c1");
    CHECK(m.system.user_id == "u");
    CHECK(m.system.content_type == "application/json");
    CHECK(m.system.content_encoding == "utf-8");
    CHECK(m.system.creation_time == "2026-11-23T17:00:00Z");
    CHECK(m.system.absolute_expiry_time == "2026-11-24T17:00:00Z");
    CHECK(m.system.to == "/devices/d");
    CHECK(m.properties.empty());
}

TEST_CASE("apply_property_bag turns every other key into an application property, in order") {
    HubMessage m;
    REQUIRE_FALSE(apply_property_bag("z=1&a&b=&%24x=2", m));
    REQUIRE(m.properties.size() == 4);
    auto it = m.properties.begin();
    CHECK(*it++ == AppProperty{"z", "1"});
    CHECK(*it++ == AppProperty{"a", std::nullopt});
    CHECK(*it++ == AppProperty{"b", ""});
    CHECK(*it++ == AppProperty{"$x", "2"});
}

TEST_CASE("apply_property_bag refuses an unknown $. key, raw or %24-encoded") {
    HubMessage m;
    const auto raw = apply_property_bag("$.foo=1", m);
    REQUIRE(raw.has_value());
    CHECK(raw->reason.find("$.foo") != std::string::npos);
    const auto encoded = apply_property_bag("%24.foo=1", m);
    REQUIRE(encoded.has_value());
    CHECK(encoded->reason.find("$.foo") != std::string::npos);
}

TEST_CASE("apply_property_bag refuses a system key with no value") {
    HubMessage m;
    const auto bad = apply_property_bag("$.mid", m);
    REQUIRE(bad.has_value());
    CHECK(bad->reason.find("$.mid") != std::string::npos);
    CHECK(bad->reason.find("no value") != std::string::npos);
}

TEST_CASE("apply_property_bag passes on a malformed escape as an error") {
    HubMessage m;
    const auto bad = apply_property_bag("a=%zz", m);
    REQUIRE(bad.has_value());
    CHECK(bad->reason.find("position 2") != std::string::npos);
}

TEST_CASE("format_message_bag emits non-empty system properties first, as %24 keys, in IoT Hub's order") {
    HubMessage m;
    m.system.to = "/devices/d";
    m.system.absolute_expiry_time = "2026-11-24T17:00:00Z";
    m.system.creation_time = "2026-11-23T17:00:00Z";
    m.system.content_encoding = "utf-8";
    m.system.content_type = "application/json";
    m.system.message_id = "m1";
    m.system.correlation_id = "";  // not set: not emitted
    m.system.user_id = "u";
    m.properties.set("k", "v w");
    m.properties.set("bare", std::nullopt);
    m.properties.set("empty", "");
    CHECK(format_message_bag(m) ==
          "%24.mid=m1&%24.uid=u&%24.ct=application%2Fjson&%24.ce=utf-8"
          "&%24.ctime=2026-11-23T17%3A00%3A00Z&%24.exp=2026-11-24T17%3A00%3A00Z&%24.to=%2Fdevices%2Fd"
          "&k=v%20w&bare&empty=");
}

TEST_CASE("format_message_bag of a message without properties is empty") {
    CHECK(format_message_bag(HubMessage{}).empty());
}

TEST_CASE("format_message_bag_to appends to a reused buffer") {
    HubMessage m;
    m.system.message_id = "m1";
    m.properties.set("a", "1");
    std::string out = "devices/d/messages/devicebound/";
    format_message_bag_to(out, m);
    CHECK(out == "devices/d/messages/devicebound/%24.mid=m1&a=1");
}

TEST_CASE("apply_property_bag(format_message_bag(m)) restores the message's properties, odd bytes included") {
    HubMessage m;
    m.system.message_id = "id:1+2%";
    m.system.correlation_id = "c&=";
    m.system.user_id = "\xc3\xa9";
    m.system.content_type = "text/plain; charset=utf-8";
    m.system.content_encoding = "utf-8";
    m.system.creation_time = "2026-11-23T17:00:00.123Z";
    m.system.absolute_expiry_time = "2026-11-23T18:00:00+00:00";
    m.system.to = "/devices/d/messages/devicebound";
    m.properties.set("a&b=c", "x&y=z%");
    m.properties.set("null", std::nullopt);
    m.properties.set("empty", "");
    m.properties.set(std::string("\x01\xff", 2), std::string("\x00\x80", 2));
    HubMessage back;
    REQUIRE_FALSE(apply_property_bag(format_message_bag(m), back));
    CHECK(back.system == m.system);
    CHECK(back.properties == m.properties);
}
