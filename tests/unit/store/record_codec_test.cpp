#include <doctest/doctest.h>

#include "store/record_codec.hpp"

using namespace hubgate;
using namespace hubgate::store;

namespace {

HubMessage full_message() {
    HubMessage m;
    m.system.message_id = "mid-1";
    m.system.correlation_id = "cid-9";
    m.system.user_id = "u";
    m.system.content_type = "application/json";
    m.system.content_encoding = "utf-8";
    m.system.creation_time = "2024-01-02T03:04:05.678Z";
    m.system.absolute_expiry_time = "2024-01-03T00:00:00Z";
    m.system.to = "/devices/d/messages/devicebound";
    m.properties.set("temp", "21.5");
    m.properties.set("flag", std::nullopt);  // `flag` with no value
    m.properties.set("empty", "");           // `empty=` with an empty value
    m.properties.set("long", std::string(300, 'x'));  // needs a two-byte varint length
    return m;
}

}  // namespace

TEST_CASE("properties survive encode then decode, keeping order and no-value versus empty value") {
    const HubMessage m = full_message();
    std::string blob;
    encode_properties(m.system, m.properties, blob);
    SystemProperties sys;
    AppProperties props;
    REQUIRE_FALSE(decode_properties(blob, sys, props).has_value());
    CHECK(sys == m.system);
    CHECK(props == m.properties);
    REQUIRE(props.find("flag") != nullptr);
    CHECK_FALSE(props.find("flag")->value.has_value());
    REQUIRE(props.find("empty")->value.has_value());
    CHECK(props.find("empty")->value->empty());
}

TEST_CASE("a message without properties encodes to three bytes and decodes to no properties") {
    std::string blob;
    encode_properties(SystemProperties{}, AppProperties{}, blob);
    CHECK(blob.size() == 3);
    SystemProperties sys;
    sys.message_id = "stale";  // decode resets what was there
    AppProperties props;
    props.set("stale", "x");
    REQUIRE_FALSE(decode_properties(blob, sys, props).has_value());
    CHECK(sys == SystemProperties{});
    CHECK(props.empty());
}

TEST_CASE("every truncation of a valid record is reported as corrupt") {
    const HubMessage m = full_message();
    std::string blob;
    encode_properties(m.system, m.properties, blob);
    for (std::size_t len = 0; len < blob.size(); ++len) {
        SystemProperties sys;
        AppProperties props;
        INFO("prefix length " << len);
        CHECK(decode_properties(std::string_view(blob).substr(0, len), sys, props).has_value());
    }
}

TEST_CASE("corrupt records are errors: unknown version, trailing bytes, bad flag, huge lengths and counts") {
    SystemProperties sys;
    AppProperties props;
    std::string good;
    encode_properties(SystemProperties{}, AppProperties{}, good);

    std::string bad_version = good;
    bad_version[0] = 7;
    CHECK(decode_properties(bad_version, sys, props)->reason.find("version") != std::string::npos);

    CHECK(decode_properties(good + "x", sys, props)->reason.find("trailing") != std::string::npos);

    // one property "a" with flag 2
    const std::string bad_flag("\x01\x00\x01\x01" "a" "\x02", 6);
    CHECK(decode_properties(bad_flag, sys, props)->reason.find("flag") != std::string::npos);

    // message id claiming 2^62 bytes
    const std::string huge_len("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\x3f", 11);
    CHECK(decode_properties(huge_len, sys, props).has_value());

    // property count of 2^40 in a 9-byte record must not be trusted (no giant reserve)
    const std::string huge_count("\x01\x00\x80\x80\x80\x80\x80\x20", 8);
    CHECK(decode_properties(huge_count, sys, props)->reason.find("count") != std::string::npos);

    // an 11-byte varint overflows 64 bits
    const std::string overlong("\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
    CHECK(decode_properties(overlong, sys, props).has_value());
}
