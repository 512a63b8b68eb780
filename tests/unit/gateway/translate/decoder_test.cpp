// The decoders of the translation stage (DESIGN.md "Translation rules", output part), fed real
// payloads from tests/data/ (tests/data/README.md says where each came from).
#include "gateway/translate/decoder.hpp"

#include <doctest/doctest.h>

#include <string>

#include "tests/unit/gateway/translate/payloads.hpp"

using namespace hubgate::translate;
using hubgate::test::payload;

namespace {

Decoded run(Format f, std::string_view bytes, std::optional<std::uint16_t> cf = std::nullopt,
            std::string_view field = {}, bool want_doc = false) {
    DecodeInput in;
    in.bytes = bytes;
    in.content_format = cf;
    in.field = field;
    in.want_doc = want_doc;
    in.receive_ms = 1'700'000'000'000;
    return decode(f, in);
}

}  // namespace

TEST_CASE("format names parse and print both ways") {
    for (const char* name : {"json", "cbor", "senml", "text", "binary", "auto"}) {
        const auto f = parse_format(name);
        REQUIRE(f);
        CHECK(std::string(to_string(*f)) == name);
    }
    CHECK_FALSE(parse_format("JSON"));
    CHECK_FALSE(parse_format(""));
    CHECK_FALSE(parse_format("automatic"));
}

// --- json ---

TEST_CASE("a Tasmota tele/SENSOR JSON payload is kept byte for byte, without a source content type") {
    for (const char* file : {"tasmota/tele_SENSOR_pow.json", "tasmota/tele_SENSOR_ds18b20.json",
                             "tasmota/tele_SENSOR_teleinfo.json", "tasmota/tele_STATE.json"}) {
        CAPTURE(file);
        const std::string bytes = payload(file);
        const Decoded d = run(Format::json, bytes);
        REQUIRE(d.status == DecodeStatus::ok);
        CHECK(d.is_json);
        CHECK(d.body == bytes);  // "Yesterday":5.340 and "Period": 9 stay as the device wrote them
        CHECK(d.source_content_type.empty());
        CHECK_FALSE(d.has_doc);
    }
}

TEST_CASE("a JSON payload decoded with want_doc also yields its document") {
    const std::string bytes = payload("tasmota/tele_SENSOR_pow.json");
    const Decoded d = run(Format::json, bytes, std::nullopt, {}, true);
    REQUIRE(d.status == DecodeStatus::ok);
    REQUIRE(d.has_doc);
    CHECK(d.body == bytes);
    CHECK(d.doc.at("/Time"_json_pointer) == "2018-02-15T17:37:10");
    CHECK(d.doc.at("/ENERGY/Power"_json_pointer) == 2635);
}

TEST_CASE("any JSON value is a JSON payload, not only an object") {
    for (const char* text : {"21.5", "\"Online\"", "true", "null", "[1,2,3]", " {} \n"}) {
        CAPTURE(text);
        const Decoded d = run(Format::json, text);
        CHECK(d.status == DecodeStatus::ok);
        CHECK(d.body == text);
    }
}

TEST_CASE("a UTF-8 byte order mark before JSON is dropped") {
    const Decoded d = run(Format::json, "\xEF\xBB\xBF{\"a\":1}");
    REQUIRE(d.status == DecodeStatus::ok);
    CHECK(d.body == "{\"a\":1}");
}

TEST_CASE("JSON with trailing bytes is a decode error naming the byte") {
    const Decoded d = run(Format::json, "{\"a\":1} x");
    CHECK(d.status == DecodeStatus::bad_payload);
    CHECK(d.reason == "trailing bytes after JSON at byte 8");
    CHECK(run(Format::json, "{\"a\":1}{\"b\":2}").reason == "trailing bytes after JSON at byte 7");
}

TEST_CASE("a JSON number beyond a double's range is a decode error") {
    CHECK(run(Format::json, "[1,1e999]").reason == "number out of range at byte 3");
    CHECK(run(Format::json, "-1E+400", std::nullopt, {}, true).reason == "number out of range at byte 0");
    CHECK(run(Format::json, "[1e-400,1.7976931348623157e308]", std::nullopt, {}, true).status == DecodeStatus::ok);
    CHECK(run(Format::json, std::string(400, '9')).reason == "number out of range at byte 0");
    CHECK(run(Format::json, std::string(300, '9')).status == DecodeStatus::ok);
}

TEST_CASE("a NUL byte after JSON is trailing garbage, not the end of the text") {
    using namespace std::string_literals;
    CHECK(run(Format::json, "7\0junk"s).reason == "trailing bytes after JSON at byte 1");
    CHECK(run(Format::json, "{}\0"s, std::nullopt, {}, true).status == DecodeStatus::bad_payload);
}

TEST_CASE("invalid JSON is a decode error with the byte offset where it stops") {
    CHECK(run(Format::json, "{\"a\":x}").reason == "invalid JSON at byte 5");
    CHECK(run(Format::json, "{\"a\":tru}").reason == "invalid JSON at byte 8");  // where `true` broke off
    CHECK(run(Format::json, "{\"a\":1,}").reason == "invalid JSON at byte 7");
    CHECK(run(Format::json, "{\"a\":").reason == "truncated JSON at byte 5");
    CHECK(run(Format::json, "").reason == "empty JSON payload");
    CHECK(run(Format::json, "  \n").reason == "empty JSON payload");
    CHECK(run(Format::json, "ON").status == DecodeStatus::bad_payload);
    // The offset counts the payload's bytes, the dropped BOM included.
    CHECK(run(Format::json, "\xEF\xBB\xBF[1,]").reason == "invalid JSON at byte 6");
}

TEST_CASE("JSON with invalid UTF-8 in a string is a decode error naming the byte") {
    CHECK(run(Format::json, "{\"a\":\"caf\xC3\"}").reason == "invalid UTF-8 at byte 9");
    CHECK(run(Format::json, "[\"\xED\xA0\x80\"]").reason == "invalid UTF-8 at byte 2");  // a surrogate
    CHECK(run(Format::json, "[\"\xC0\xAF\"]").reason == "invalid UTF-8 at byte 2");      // overlong
    CHECK(run(Format::json, "[\"caf\xC3\xA9\"]").status == DecodeStatus::ok);
}

TEST_CASE("the json format accepts no Content-Format or 50 and refuses any other") {
    CHECK(run(Format::json, "{}", content_format::json).status == DecodeStatus::ok);
    const Decoded d = run(Format::json, "{}", content_format::cbor);
    CHECK(d.status == DecodeStatus::unsupported_format);
    CHECK(d.reason == "Content-Format 60 (application/cbor) cannot be decoded as json");
    CHECK(run(Format::json, "{}", std::uint16_t{1234}).reason == "Content-Format 1234 cannot be decoded as json");
    CHECK(run(Format::json, "{}", content_format::senml_json).status == DecodeStatus::unsupported_format);
}

// --- text ---

TEST_CASE("Tasmota's stat/POWER ON and OFF become booleans") {
    const Decoded on = run(Format::text, payload("tasmota/stat_POWER_on.txt"));
    REQUIRE(on.status == DecodeStatus::ok);
    CHECK(on.is_json);
    CHECK(on.body == "true");
    CHECK(on.source_content_type == "text/plain");
    CHECK(run(Format::text, payload("tasmota/stat_POWER_off.txt")).body == "false");
}

TEST_CASE("true, false, on and off are booleans in any case") {
    for (const char* t : {"true", "TRUE", "True", "on", "On", "oN"}) CHECK(run(Format::text, t).body == "true");
    for (const char* t : {"false", "FALSE", "off", "Off", "OFF"}) CHECK(run(Format::text, t).body == "false");
}

TEST_CASE("Tasmota's LWT Online and Offline stay strings, case kept") {
    CHECK(run(Format::text, payload("tasmota/tele_LWT_online.txt")).body == "\"Online\"");
    CHECK(run(Format::text, payload("tasmota/tele_LWT_offline.txt")).body == "\"Offline\"");
    CHECK(run(Format::text, "online").body == "\"online\"");
}

TEST_CASE("a text JSON number becomes a number written as it arrived, big integers exactly") {
    CHECK(run(Format::text, "21.37").body == "21.37");
    CHECK(run(Format::text, "-0.5e-3").body == "-0.5e-3");
    CHECK(run(Format::text, "5.340").body == "5.340");
    CHECK(run(Format::text, "123456789012345678901234567890").body == "123456789012345678901234567890");
    CHECK(run(Format::text, "0").body == "0");
}

TEST_CASE("text that is not a JSON number, or not one a double can hold, stays a string") {
    for (const char* t : {"+1", ".5", "1.", "007", "0x1F", "NaN", "Infinity", "1e", "--1", "1 2", "1e999"}) {
        CAPTURE(t);
        CHECK(run(Format::text, t).body == nlohmann::json(t).dump());
    }
}

TEST_CASE("text is trimmed of ASCII whitespace only") {
    CHECK(run(Format::text, " \t21.5\r\n").body == "21.5");
    CHECK(run(Format::text, "\n on \n").body == "true");
    CHECK(run(Format::text, "  hello world ").body == "\"hello world\"");
    CHECK(run(Format::text, "\xC2\xA0" "5").body == "\"\xC2\xA0" "5\"");  // NBSP is not ASCII whitespace
    CHECK(run(Format::text, "").body == "\"\"");
}

TEST_CASE("text strings are escaped as JSON") {
    CHECK(run(Format::text, "say \"hi\"\\").body == R"("say \"hi\"\\")");
    CHECK(run(Format::text, "a\x01z").body == R"("a\u0001z")");
    CHECK(run(Format::text, "caf\xC3\xA9").body == "\"caf\xC3\xA9\"");
}

TEST_CASE("text with a field is wrapped as an object under that field") {
    CHECK(run(Format::text, "21.37", std::nullopt, "temperature").body == R"({"temperature":21.37})");
    CHECK(run(Format::text, "ON", std::nullopt, "POWER").body == R"({"POWER":true})");
    CHECK(run(Format::text, "Online", std::nullopt, "LWT").body == R"({"LWT":"Online"})");
    CHECK(run(Format::text, "1", std::nullopt, "a\"b").body == R"({"a\"b":1})");
}

TEST_CASE("text decoded with want_doc yields the value, wrapped when a field is set") {
    const Decoded d = run(Format::text, "21.37", std::nullopt, "temperature", true);
    REQUIRE(d.has_doc);
    CHECK(d.doc == nlohmann::json::parse(R"({"temperature":21.37})"));
    const Decoded b = run(Format::text, "off", std::nullopt, {}, true);
    REQUIRE(b.has_doc);
    CHECK(b.doc == false);
}

TEST_CASE("text with invalid UTF-8 is a decode error") {
    const Decoded d = run(Format::text, "ab\xFF");
    CHECK(d.status == DecodeStatus::bad_payload);
    CHECK(d.reason == "invalid UTF-8 at byte 2");
    CHECK(run(Format::text, "\xE2\x82").reason == "invalid UTF-8 at byte 0");  // truncated sequence
}

TEST_CASE("the text format accepts no Content-Format or 0 and refuses any other") {
    CHECK(run(Format::text, "1", content_format::text_plain).status == DecodeStatus::ok);
    CHECK(run(Format::text, "1", content_format::json).status == DecodeStatus::unsupported_format);
    CHECK(run(Format::text, "1", content_format::octet_stream).reason ==
          "Content-Format 42 (application/octet-stream) cannot be decoded as text");
}

// --- binary ---

TEST_CASE("binary keeps the bytes as bytes whatever the Content-Format") {
    const std::string bytes("\x00\xFF\x10 raw", 7);
    for (std::optional<std::uint16_t> cf : {std::optional<std::uint16_t>{}, std::optional<std::uint16_t>{42},
                                            std::optional<std::uint16_t>{50}, std::optional<std::uint16_t>{9999}}) {
        const Decoded d = run(Format::binary, bytes, cf, {}, true);
        REQUIRE(d.status == DecodeStatus::ok);
        CHECK_FALSE(d.is_json);
        CHECK(d.body == bytes);
        CHECK(d.source_content_type.empty());
        CHECK_FALSE(d.has_doc);
    }
}

// --- auto ---

TEST_CASE("auto without a Content-Format keeps JSON that parses and makes anything else binary") {
    const std::string sensor = payload("tasmota/tele_SENSOR_ds18b20.json");
    const Decoded j = run(Format::automatic, sensor);
    REQUIRE(j.status == DecodeStatus::ok);
    CHECK(j.is_json);
    CHECK(j.body == sensor);

    const Decoded t = run(Format::automatic, payload("tasmota/tele_LWT_online.txt"));
    REQUIRE(t.status == DecodeStatus::ok);
    CHECK_FALSE(t.is_json);
    CHECK(t.body == "Online");
}

TEST_CASE("auto follows the Content-Format: 0 text, 42 binary, 50 json, an unknown number binary") {
    CHECK(run(Format::automatic, "ON", content_format::text_plain).body == "true");
    const Decoded b = run(Format::automatic, "{}", content_format::octet_stream);
    CHECK_FALSE(b.is_json);
    CHECK(b.body == "{}");
    CHECK(run(Format::automatic, "{}", content_format::json).is_json);
    const Decoded bad = run(Format::automatic, "{", content_format::json);
    CHECK(bad.status == DecodeStatus::bad_payload);  // the device said JSON: no fallback to bytes
    const Decoded unknown = run(Format::automatic, "{}", std::uint16_t{11542});
    REQUIRE(unknown.status == DecodeStatus::ok);
    CHECK_FALSE(unknown.is_json);
}

// --- the device families' documented payloads ---

TEST_CASE("Zigbee2MQTT device and bridge JSON is kept as it arrived") {
    for (const char* file : {"zigbee2mqtt/device_WSDCGQ01LM.json", "zigbee2mqtt/device_WXKG01LM.json",
                             "zigbee2mqtt/device_RTCGQ01LM.json", "zigbee2mqtt/device_LED1545G12.json",
                             "zigbee2mqtt/bridge_event_device_joined.json"}) {
        CAPTURE(file);
        const std::string bytes = payload(file);
        const Decoded d = run(Format::json, bytes, std::nullopt, {}, true);
        REQUIRE(d.status == DecodeStatus::ok);
        CHECK(d.body == bytes);
    }
    const Decoded t = run(Format::json, payload("zigbee2mqtt/device_WSDCGQ01LM.json"), std::nullopt, {}, true);
    CHECK(t.doc.at("temperature") == 27.34);
    const Decoded e = run(Format::json, payload("zigbee2mqtt/bridge_event_device_joined.json"), std::nullopt, {}, true);
    CHECK(e.doc.at("/data/ieee_address"_json_pointer) == "0x90fd9ffffe6494fc");
}

TEST_CASE("Zigbee2MQTT's bridge state is not JSON: the json format refuses it, text makes it a string") {
    CHECK(run(Format::json, payload("zigbee2mqtt/bridge_state_online.txt")).status == DecodeStatus::bad_payload);
    CHECK(run(Format::text, payload("zigbee2mqtt/bridge_state_online.txt")).body == R"("online")");
    CHECK(run(Format::text, payload("zigbee2mqtt/bridge_state_offline.txt"), std::nullopt, "bridge").body ==
          R"({"bridge":"offline"})");
}

TEST_CASE("Homie property values become numbers, booleans and strings") {
    CHECK(run(Format::text, payload("homie/engine_temperature.txt"), std::nullopt, "temperature").body ==
          R"({"temperature":21.5})");
    CHECK(run(Format::text, payload("homie/light_power.txt"), std::nullopt, "power").body == R"({"power":true})");
    CHECK(run(Format::text, payload("homie/state_init.txt")).body == R"("init")");
    CHECK(run(Format::text, payload("homie/state_lost.txt")).body == R"("lost")");
    CHECK(run(Format::text, payload("homie/color_rgb.txt")).body == R"("rgb,100,100,100")");
}

TEST_CASE("ESPHome's states and availability become booleans and strings") {
    CHECK(run(Format::text, payload("esphome/binary_sensor_state_on.txt")).body == "true");
    CHECK(run(Format::text, payload("esphome/binary_sensor_state_off.txt")).body == "false");
    CHECK(run(Format::text, payload("esphome/status_online.txt")).body == R"("online")");
    CHECK(run(Format::text, payload("esphome/status_offline.txt")).body == R"("offline")");
    CHECK(run(Format::text, payload("esphome/sensor_state_nan_as_none.txt"), std::nullopt, "temperature").body ==
          R"({"temperature":"None"})");
}

TEST_CASE("Shelly Gen1's relay on and off become booleans") {
    const Decoded on = run(Format::text, payload("shelly/relay_0_on.txt"), std::nullopt, "relay", true);
    REQUIRE(on.status == DecodeStatus::ok);
    CHECK(on.body == R"({"relay":true})");
    CHECK(on.doc == nlohmann::json::parse(R"({"relay":true})"));
    CHECK(run(Format::text, payload("shelly/relay_0_off.txt"), std::nullopt, "relay").body == R"({"relay":false})");
}

TEST_CASE("auto keeps a device's JSON and passes its plain text on as bytes") {
    CHECK(run(Format::automatic, payload("zigbee2mqtt/device_LED1545G12.json")).is_json);
    const Decoded t = run(Format::automatic, payload("esphome/binary_sensor_state_on.txt"));
    CHECK_FALSE(t.is_json);
    CHECK(t.body == "ON");
    // "true" and "21.5" are JSON texts, so auto keeps them as JSON
    CHECK(run(Format::automatic, payload("homie/light_power.txt")).is_json);
    CHECK(run(Format::automatic, payload("homie/engine_temperature.txt")).body == "21.5");
}
