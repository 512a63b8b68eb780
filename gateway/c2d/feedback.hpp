// IoT Hub delivery feedback records for C2D messages, gathered into batches (up to
// feedback_max_records or feedback_max_delay_ms) that travel upstream as ordinary stored D2C
// messages. Used by the C2D relay; the batch message format is documented in docs/c2d.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/model/hub_message.hpp"

namespace hubgate::c2d {

enum class FeedbackStatus { success, expired, delivery_count_exceeded, rejected, purged };
const char* to_string(FeedbackStatus s) noexcept;  // "Success", "Expired", ...

struct FeedbackRecord {
    std::string original_message_id;
    std::string device_id;
    FeedbackStatus status = FeedbackStatus::success;
    std::string description;
    std::int64_t enqueued_ms = 0;  // when the outcome happened
};

inline constexpr const char* kFeedbackContentType = "application/vnd.microsoft.iothub.feedback.json";

// The D2C message carrying `records`: body a JSON array of
// {"originalMessageId","deviceId","statusCode","description","enqueuedTimeUtc"}, content type
// application/vnd.microsoft.iothub.feedback.json, application property message-type=feedback.
HubMessage feedback_message(const std::vector<FeedbackRecord>& records, const std::string& gateway_device_id,
                            std::string message_id, std::int64_t now_ms);

// ISO-8601 UTC text with milliseconds ("2026-11-23T17:00:00.000Z").
std::string iso8601_utc(std::int64_t unix_ms);
// Parses what check_iso8601_utc() accepts (Z or +00:00, optional fraction); -1 if it cannot.
std::int64_t parse_iso8601_utc_ms(const std::string& text);

}  // namespace hubgate::c2d
