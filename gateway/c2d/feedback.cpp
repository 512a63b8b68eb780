#include "gateway/c2d/feedback.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

namespace hubgate::c2d {

const char* to_string(FeedbackStatus s) noexcept {
    switch (s) {
        case FeedbackStatus::success: return "Success";
        case FeedbackStatus::expired: return "Expired";
        case FeedbackStatus::delivery_count_exceeded: return "DeliveryCountExceeded";
        case FeedbackStatus::rejected: return "Rejected";
        case FeedbackStatus::purged: return "Purged";
    }
    return "Unknown";
}

std::string iso8601_utc(std::int64_t unix_ms) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];  // generous: the compiler cannot see that the fields are small
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
    return buf;
}

std::int64_t parse_iso8601_utc_ms(const std::string& text) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6) return -1;
    std::string rest = text.substr(static_cast<std::size_t>(consumed));
    int ms = 0;
    if (!rest.empty() && rest[0] == '.') {
        std::size_t i = 1;
        int digits = 0;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
            if (digits < 3) ms = ms * 10 + (rest[i] - '0');
            ++digits;
            ++i;
        }
        if (digits == 0) return -1;
        for (int k = digits; k < 3; ++k) ms *= 10;
        rest = rest.substr(i);
    }
    if (rest != "Z" && rest != "+00:00") return -1;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return -1;
    return static_cast<std::int64_t>(t) * 1000 + ms;
}

HubMessage feedback_message(const std::vector<FeedbackRecord>& records, const std::string& gateway_device_id,
                            std::string message_id, std::int64_t now_ms) {
    // Low volume (a few records a second at most): nlohmann keeps this obviously right.
    nlohmann::json body = nlohmann::json::array();
    for (const auto& r : records) {
        body.push_back({{"originalMessageId", r.original_message_id},
                        {"deviceId", r.device_id},
                        {"statusCode", to_string(r.status)},
                        {"description", r.description},
                        {"enqueuedTimeUtc", iso8601_utc(r.enqueued_ms)}});
    }
    HubMessage m;
    m.body = body.dump();
    m.system.message_id = std::move(message_id);
    m.system.content_type = kFeedbackContentType;
    m.system.content_encoding = "utf-8";
    m.properties.set("message-type", std::string("feedback"));
    m.device_id = gateway_device_id;
    m.enqueued_ms = now_ms;
    return m;
}

}  // namespace hubgate::c2d
