#include "gateway/model/validation.hpp"

#include <doctest/doctest.h>

#include "gateway/model/message_id.hpp"

using namespace hubgate;

namespace {

bool contains(const Status& s, std::string_view text) {
    return s.has_value() && s->reason.find(text) != std::string::npos;
}

// A message whose hub_size is exactly `size` bytes, with the given message id.
HubMessage message_of_size(std::size_t size, std::string message_id) {
    HubMessage m;
    m.system.message_id = std::move(message_id);
    m.properties.set("k", "v");
    const auto fixed = m.system.message_id.size() + 2;
    m.body.assign(size - fixed, 'x');
    REQUIRE(hub_size(m) == size);
    return m;
}

}  // namespace

// --- size ---------------------------------------------------------------------------------------

TEST_CASE("a 262144-byte message with a message id is accepted") {
    MessageIdGenerator ids;
    auto m = message_of_size(262144, "id-1");
    CHECK_FALSE(normalize_message(m, ids));
}

TEST_CASE("a 262145-byte message with a message id is refused with a size reason") {
    MessageIdGenerator ids;
    auto m = message_of_size(262145, "id-1");
    const auto bad = normalize_message(m, ids);
    CHECK(contains(bad, "message is 262145 bytes by IoT Hub's size rule "
                        "(body + property values + names); the limit is 262144"));
}

TEST_CASE("without a message id, the generated 36-character id counts toward the 262144-byte limit") {
    MessageIdGenerator ids;
    auto fits = message_of_size(262144 - 36, "");
    CHECK_FALSE(normalize_message(fits, ids));
    CHECK(fits.system.message_id.size() == 36);
    CHECK(hub_size(fits) == 262144);

    auto over = message_of_size(262144 - 35, "");
    CHECK(contains(normalize_message(over, ids), "message is 262145 bytes"));
}

TEST_CASE("a 262144-byte message without a message id is refused once its id is added") {
    MessageIdGenerator ids;
    auto m = message_of_size(262144, "");
    CHECK(contains(normalize_message(m, ids), "message is 262180 bytes"));
}

TEST_CASE("check_size counts application property names as well as values") {
    HubMessage m;
    m.body.assign(262144 - 4, 'x');
    m.properties.set("ab", "cd");
    CHECK_FALSE(check_size(m));
    m.properties.set("abc", "cd");
    CHECK(contains(check_size(m), "262149 bytes"));
}

// --- application property names -----------------------------------------------------------------

TEST_CASE("application property names may use ASCII letters, digits and !#$%&'*+-.^_`|~") {
    CHECK_FALSE(check_app_property_name("azAZ09"));
    CHECK_FALSE(check_app_property_name("!#$%&'*+-.^_`|~"));
}

TEST_CASE("an application property name with a space is refused, naming the character and the allowed set") {
    const auto bad = check_app_property_name("a b");
    CHECK(contains(bad, "application property name 'a b' contains ' ', allowed: ASCII letters, digits and "
                        "!#$%&'*+-.^_`|~"));
}

TEST_CASE("application property names with separators or quotes are refused") {
    for (char c : std::string_view("\"(),/:;<=>?@[\\]{}")) {
        CAPTURE(c);
        CHECK(contains(check_app_property_name(std::string("a") + c), "allowed: ASCII letters"));
    }
}

TEST_CASE("an application property name with a control character is refused") {
    CHECK(contains(check_app_property_name("a\tb"), "0x09"));
    CHECK(contains(check_app_property_name(std::string("a\0b", 3)), "0x00"));
}

TEST_CASE("a non-ASCII application property name is refused") {
    CHECK(contains(check_app_property_name("caf\xc3\xa9"), "non-ASCII"));
}

TEST_CASE("an empty application property name is refused") {
    CHECK(contains(check_app_property_name(""), "empty"));
}

// --- application property values -----------------------------------------------------------------

TEST_CASE("application property values may be any printable ASCII, spaces included") {
    std::string printable;
    for (char c = 0x20; c <= 0x7E; ++c) printable.push_back(c);
    CHECK_FALSE(check_app_property_value("k", printable));
    CHECK_FALSE(check_app_property_value("k", ""));
}

TEST_CASE("an application property value with a control character is refused") {
    CHECK(contains(check_app_property_value("k", "a\nb"), "0x0A"));
    CHECK(contains(check_app_property_value("k", "\x7f"), "0x7F"));
    CHECK(contains(check_app_property_value("k", "a\nb"), "printable ASCII (0x20-0x7E)"));
}

TEST_CASE("a non-ASCII application property value is refused, naming the property") {
    const auto bad = check_app_property_value("temp", "25\xc2\xb0");
    CHECK(contains(bad, "'temp'"));
    CHECK(contains(bad, "non-ASCII"));
}

TEST_CASE("normalize_message refuses a bad application property name or value but accepts a null value") {
    MessageIdGenerator ids;
    HubMessage bad_name;
    bad_name.properties.set("a b", "1");
    CHECK(contains(normalize_message(bad_name, ids), "'a b'"));

    HubMessage bad_value;
    bad_value.properties.set("k", "\x01");
    CHECK(contains(normalize_message(bad_value, ids), "0x01"));

    HubMessage null_value;
    null_value.properties.set("flag", std::nullopt);
    CHECK_FALSE(normalize_message(null_value, ids));
}

// --- message id ----------------------------------------------------------------------------------

TEST_CASE("a 128-character message id is accepted and a 129-character one refused") {
    CHECK_FALSE(check_message_id(std::string(128, 'a')));
    CHECK(contains(check_message_id(std::string(129, 'a')), "message id is 129 characters; the limit is 128"));
}

TEST_CASE("message ids may use ASCII letters, digits and the punctuation IoT Hub allows") {
    CHECK_FALSE(check_message_id("azAZ09-:.+%_#*?!(),=@;$'"));
}

TEST_CASE("message ids with characters outside the allowed set are refused") {
    for (char c : std::string_view(" /&<>\"[]{}^`|~\\")) {
        CAPTURE(c);
        CHECK(contains(check_message_id(std::string("id") + c), "allowed: ASCII letters, digits and"));
    }
    CHECK(contains(check_message_id("id\xc3\xa9"), "non-ASCII"));
    CHECK(contains(check_message_id("id\n"), "0x0A"));
}

TEST_CASE("normalize_message refuses a supplied message id that breaks the rules") {
    MessageIdGenerator ids;
    HubMessage m;
    m.system.message_id = std::string(129, 'a');
    CHECK(contains(normalize_message(m, ids), "129 characters"));
}

TEST_CASE("a message without a message id gets a generated UUID") {
    MessageIdGenerator ids;
    HubMessage m;
    REQUIRE_FALSE(normalize_message(m, ids));
    CHECK(m.system.message_id.size() == 36);
    CHECK_FALSE(check_message_id(m.system.message_id));
}

TEST_CASE("a supplied message id is kept") {
    MessageIdGenerator ids;
    HubMessage m;
    m.system.message_id = "mine";
    REQUIRE_FALSE(normalize_message(m, ids));
    CHECK(m.system.message_id == "mine");
}

// --- identity spoofing ---------------------------------------------------------------------------

TEST_CASE("application properties device-id and module-id are refused as identity spoofing") {
    MessageIdGenerator ids;
    for (const char* name : {"device-id", "module-id", "Device-Id", "MODULE-ID"}) {
        CAPTURE(name);
        HubMessage m;
        m.properties.set(name, "other");
        CHECK(contains(normalize_message(m, ids), "is reserved"));
    }
}

TEST_CASE("application properties starting with iothub-connection- are refused as identity spoofing") {
    MessageIdGenerator ids;
    for (const char* name : {"iothub-connection-device-id", "iothub-connection-auth-method", "IoTHub-Connection-x"}) {
        CAPTURE(name);
        HubMessage m;
        m.properties.set(name, "x");
        CHECK(contains(normalize_message(m, ids), "iothub-connection-"));
    }
}

TEST_CASE("names that merely contain device-id are not spoofing") {
    MessageIdGenerator ids;
    HubMessage m;
    m.properties.set("source-device-id", "x");
    m.properties.set("iothub-connection", "x");
    CHECK_FALSE(normalize_message(m, ids));
}

// --- creation time mapping -----------------------------------------------------------------------

TEST_CASE("iothub-creation-time-utc becomes the creation-time system property and leaves the app properties") {
    MessageIdGenerator ids;
    HubMessage m;
    m.properties.set("a", "1");
    m.properties.set("iothub-creation-time-utc", "2026-11-23T17:00:00Z");
    REQUIRE_FALSE(normalize_message(m, ids));
    CHECK(m.system.creation_time == "2026-11-23T17:00:00Z");
    CHECK(m.properties.find("iothub-creation-time-utc") == nullptr);
    CHECK(m.properties.size() == 1);
}

TEST_CASE("an explicit $.ctime wins over iothub-creation-time-utc, which is still removed") {
    MessageIdGenerator ids;
    HubMessage m;
    m.system.creation_time = "2026-01-01T00:00:00Z";
    m.properties.set("iothub-creation-time-utc", "2026-11-23T17:00:00Z");
    REQUIRE_FALSE(normalize_message(m, ids));
    CHECK(m.system.creation_time == "2026-01-01T00:00:00Z");
    CHECK(m.properties.empty());
}

TEST_CASE("a malformed iothub-creation-time-utc is refused as a creation time") {
    MessageIdGenerator ids;
    HubMessage m;
    m.properties.set("iothub-creation-time-utc", "yesterday");
    CHECK(contains(normalize_message(m, ids), "creation time 'yesterday' is not an ISO-8601 UTC time"));
}

TEST_CASE("iothub-creation-time-utc without a value is refused") {
    MessageIdGenerator ids;
    HubMessage m;
    m.properties.set("iothub-creation-time-utc", std::nullopt);
    CHECK(contains(normalize_message(m, ids), "has no value"));
}

// --- times ---------------------------------------------------------------------------------------

TEST_CASE("ISO-8601 UTC times with Z, fractional seconds or a +00:00 offset are accepted") {
    CHECK_FALSE(check_iso8601_utc("t", "2026-11-23T17:00:00Z"));
    CHECK_FALSE(check_iso8601_utc("t", "2026-11-23T17:00:00.123Z"));
    CHECK_FALSE(check_iso8601_utc("t", "2026-11-23T17:00:00.1234567Z"));
    CHECK_FALSE(check_iso8601_utc("t", "2026-11-23T17:00:00+00:00"));
    CHECK_FALSE(check_iso8601_utc("t", "2026-11-23T17:00:00.5+00:00"));
    CHECK_FALSE(check_iso8601_utc("t", "2028-02-29T23:59:59Z"));
}

TEST_CASE("times that are not ISO-8601 UTC are refused with a reason") {
    for (const char* bad : {"", "2026-11-23", "2026-11-23 17:00:00Z", "2026-11-23T17:00:00", "2026-11-23T17:00Z",
                            "2026-11-23T17:00:00+01:00", "2026-11-23T17:00:00-00:00", "2026-11-23T17:00:00z",
                            "2026-11-23T17:00:00.Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                            "2026-11-31T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T17:60:00Z",
                            "2026-11-23T17:00:60Z", "26-11-23T17:00:00Z", "2026-11-23T17:00:00Zjunk",
                            "1700000000"}) {
        CAPTURE(bad);
        CHECK(contains(check_iso8601_utc("expiry time", bad), "is not an ISO-8601 UTC time"));
    }
}

TEST_CASE("normalize_message checks the creation and expiry times") {
    MessageIdGenerator ids;
    HubMessage ctime;
    ctime.system.creation_time = "2026-11-23T17:00:00+02:00";
    CHECK(contains(normalize_message(ctime, ids), "creation time"));
    HubMessage exp;
    exp.system.absolute_expiry_time = "tomorrow";
    CHECK(contains(normalize_message(exp, ids), "expiry time"));
}

// --- other system properties ---------------------------------------------------------------------

TEST_CASE("content type and content encoding must be printable ASCII") {
    MessageIdGenerator ids;
    HubMessage ok;
    ok.system.content_type = "application/json; charset=utf-8";
    ok.system.content_encoding = "utf-8";
    CHECK_FALSE(normalize_message(ok, ids));

    HubMessage ct;
    ct.system.content_type = "text/plain\r\n";
    CHECK(contains(normalize_message(ct, ids), "content type"));
    HubMessage ce;
    ce.system.content_encoding = "utf\xc3\xa9";
    CHECK(contains(normalize_message(ce, ids), "content encoding"));
}

TEST_CASE("correlation id, user id and 'to' must be ASCII") {
    MessageIdGenerator ids;
    HubMessage cid;
    cid.system.correlation_id = "c\xc3\xa9";
    CHECK(contains(normalize_message(cid, ids), "correlation id"));
    HubMessage uid;
    uid.system.user_id = "\xff";
    CHECK(contains(normalize_message(uid, ids), "user id"));
    HubMessage to;
    to.system.to = "/devices/\xe2\x82\xac";
    CHECK(contains(normalize_message(to, ids), "non-ASCII"));
}

TEST_CASE("the size check runs after the charset checks") {
    MessageIdGenerator ids;
    auto m = message_of_size(262145, "id-1");
    m.properties.set("a b", "1");
    CHECK(contains(normalize_message(m, ids), "'a b'"));
}
