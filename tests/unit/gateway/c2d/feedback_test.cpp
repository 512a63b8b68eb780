#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/c2d/feedback.hpp"

using namespace hubgate;
using namespace hubgate::c2d;

TEST_CASE("a feedback message carries IoT Hub's record fields as a JSON array") {
    std::vector<FeedbackRecord> records{
        {"m-1", "dev-1", FeedbackStatus::success, "delivered and completed", 1795449600123},
        {"m-2", "dev-2", FeedbackStatus::delivery_count_exceeded, "not completed after 10 delivery attempts", 1795449601000},
    };
    const auto m = feedback_message(records, "gw-01", "fb-1", 1795449602000);
    const auto body = nlohmann::json::parse(m.body);
    REQUIRE(body.is_array());
    REQUIRE(body.size() == 2);
    CHECK(body[0]["originalMessageId"] == "m-1");
    CHECK(body[0]["deviceId"] == "dev-1");
    CHECK(body[0]["statusCode"] == "Success");
    CHECK(body[0]["description"] == "delivered and completed");
    CHECK(body[0]["enqueuedTimeUtc"] == "2026-11-23T16:00:00.123Z");
    CHECK(body[1]["statusCode"] == "DeliveryCountExceeded");
}

TEST_CASE("a feedback message is the gateway's own D2C message with the feedback content type and message-type") {
    const auto m = feedback_message({{"m-1", "dev-1", FeedbackStatus::rejected, "unknown device", 0}}, "gw-01", "fb-7", 5);
    CHECK(m.device_id == "gw-01");
    CHECK(m.module_id.empty());
    CHECK(m.system.message_id == "fb-7");
    CHECK(m.system.content_type == "application/vnd.microsoft.iothub.feedback.json");
    CHECK(m.system.content_encoding == "utf-8");
    REQUIRE(m.properties.find("message-type") != nullptr);
    CHECK(*m.properties.find("message-type")->value == "feedback");
    CHECK(m.enqueued_ms == 5);
}

TEST_CASE("every status has IoT Hub's statusCode text") {
    CHECK(std::string(to_string(FeedbackStatus::success)) == "Success");
    CHECK(std::string(to_string(FeedbackStatus::expired)) == "Expired");
    CHECK(std::string(to_string(FeedbackStatus::delivery_count_exceeded)) == "DeliveryCountExceeded");
    CHECK(std::string(to_string(FeedbackStatus::rejected)) == "Rejected");
    CHECK(std::string(to_string(FeedbackStatus::purged)) == "Purged");
}

TEST_CASE("ISO-8601 UTC expiry times parse with Z or +00:00 and optional fractions") {
    CHECK(parse_iso8601_utc_ms("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00Z") == 1795449600000);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00.5Z") == 1795449600500);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00.123456Z") == 1795449600123);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00+00:00") == 1795449600000);
}

TEST_CASE("times that are not ISO-8601 UTC do not parse") {
    CHECK(parse_iso8601_utc_ms("") == -1);
    CHECK(parse_iso8601_utc_ms("2026-11-23 16:00:00Z") == -1);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00+01:00") == -1);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00") == -1);
    CHECK(parse_iso8601_utc_ms("2026-11-23T16:00:00.Z") == -1);
}

TEST_CASE("formatting then parsing an instant gives it back to the millisecond") {
    for (std::int64_t ms : {0LL, 1LL, 999LL, 1795449600123LL, 4102444799999LL})
        CHECK(parse_iso8601_utc_ms(iso8601_utc(ms)) == ms);
}
