#include "gateway/relay/batch_format.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>

#include "gateway/model/crypto.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/model/url_encoding.hpp"

namespace hubgate::relay {
namespace {

// The JSON is written by hand into the builder's reused buffer: nlohmann::json allocates per value,
// which at a 100k msg/s backlog drain is most of the cost. The escaper and the UTF-8 validator below
// are small and are checked against nlohmann's parser in tests/unit/gateway/relay.

// Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(const unsigned char* p, std::size_t n) noexcept {
    const unsigned char c = p[0];
    if (c < 0x80) return 1;
    auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        return i < n && p[i] >= lo && p[i] <= hi;
    };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

bool is_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
        const auto len = utf8_sequence_length(p + i, s.size() - i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

// Printable ASCII other than '"' and '\\' goes through as is.
constexpr bool is_plain(unsigned char c) noexcept { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// RFC 8259 section 7: '"', '\\' and U+0000..U+001F must be escaped; nothing else needs to be.
// Text fields other than the body are ASCII by the door rules; should an invalid UTF-8 byte reach
// one anyway, it becomes U+FFFD so the batch stays valid JSON (the body never takes this path: an
// invalid body goes as base64).
constexpr std::string_view kReplacement = "\\ufffd";

std::size_t escaped_size(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = p[i];
        if (is_plain(c)) {
            ++n;
            ++i;
        } else if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            n += 2;
            ++i;
        } else if (c < 0x20) {
            n += 6;  // \u00XX
            ++i;
        } else {
            const auto len = utf8_sequence_length(p + i, s.size() - i);
            n += len == 0 ? kReplacement.size() : len;
            i += len == 0 ? 1 : len;
        }
    }
    return n;
}

void append_escaped(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t i = 0;
    while (i < s.size()) {
        // Copy the longest run that needs no escaping in one append.
        std::size_t run = i;
        while (run < s.size() && is_plain(p[run])) ++run;
        out.append(s.data() + i, run - i);
        i = run;
        if (i == s.size()) break;
        const unsigned char c = p[i];
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\b': out.append("\\b"); break;
            case '\f': out.append("\\f"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            default:
                if (c < 0x20) {
                    const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0x0F]};
                    out.append(esc, sizeof esc);
                } else {
                    const auto len = utf8_sequence_length(p + i, s.size() - i);
                    if (len == 0) {
                        out.append(kReplacement);
                        ++i;
                        continue;
                    }
                    out.append(s.data() + i, len);
                    i += len;
                    continue;
                }
        }
        ++i;
    }
}

constexpr std::size_t kTimeChars = 24;  // 2024-05-01T12:34:56.789Z

// ISO-8601 UTC with milliseconds. Clamped to years 1970..9999 so the text is always 24 characters
// (a message's enqueued time is the gateway's clock; anything outside that range is a broken clock).
void format_time(char (&out)[kTimeChars], std::int64_t epoch_ms) noexcept {
    using namespace std::chrono;
    constexpr std::int64_t kMaxMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
    epoch_ms = std::clamp<std::int64_t>(epoch_ms, 0, kMaxMs);
    const sys_time<milliseconds> tp{milliseconds{epoch_ms}};
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    auto ms_of_day = (tp - day).count();
    auto put = [&](std::size_t at, std::int64_t value, std::size_t digits) {
        for (std::size_t k = digits; k-- > 0;) {
            out[at + k] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
    };
    put(0, static_cast<int>(ymd.year()), 4);
    out[4] = '-';
    put(5, static_cast<unsigned>(ymd.month()), 2);
    out[7] = '-';
    put(8, static_cast<unsigned>(ymd.day()), 2);
    out[10] = 'T';
    put(11, ms_of_day / 3'600'000, 2);
    out[13] = ':';
    put(14, ms_of_day / 60'000 % 60, 2);
    out[16] = ':';
    put(17, ms_of_day / 1000 % 60, 2);
    out[19] = '.';
    put(20, ms_of_day % 1000, 3);
    out[23] = 'Z';
}

struct SystemField {
    std::string_view json_key;  // with quotes and colon, as written
    std::string SystemProperties::*member;
};

// `to` is left out: it is a C2D-only property and D2C messages never carry it.
constexpr std::array<SystemField, 7> kSystemFields{{
    {R"("messageId":)", &SystemProperties::message_id},
    {R"("correlationId":)", &SystemProperties::correlation_id},
    {R"("userId":)", &SystemProperties::user_id},
    {R"("contentType":)", &SystemProperties::content_type},
    {R"("contentEncoding":)", &SystemProperties::content_encoding},
    {R"("creationTimeUtc":)", &SystemProperties::creation_time},
    {R"("absoluteExpiryTimeUtc":)", &SystemProperties::absolute_expiry_time},
}};

// One element, written through `out`: the same sequence drives the size count and the writer, so the
// size checked against the limit is by construction the size written.
template <class Out>
void emit_element(Out& out, const HubMessage& m, bool body_is_text) {
    out.literal(R"({"deviceId":)");
    out.string(m.device_id);
    out.literal(R"(,"moduleId":)");
    if (m.module_id.empty())
        out.literal("null");
    else
        out.string(m.module_id);
    out.literal(R"(,"enqueuedTimeUtc":)");
    out.time(m.enqueued_ms);
    out.literal(R"(,"systemProperties":{)");
    bool first = true;
    for (const auto& f : kSystemFields) {
        const auto& value = m.system.*f.member;
        if (value.empty()) continue;
        if (!first) out.literal(",");
        first = false;
        out.literal(f.json_key);
        out.string(value);
    }
    out.literal(R"(},"properties":{)");
    first = true;
    for (const auto& p : m.properties) {
        if (!first) out.literal(",");
        first = false;
        out.string(p.name);
        out.literal(":");
        if (p.value)
            out.string(*p.value);
        else
            out.literal("null");
    }
    out.literal(R"(},"body":)");
    if (body_is_text)
        out.string(m.body);
    else
        out.base64_string(m.body);
    out.literal(body_is_text ? R"(,"base64Encoded":false})" : R"(,"base64Encoded":true})");
}

struct SizeCounter {
    std::size_t n = 0;
    void literal(std::string_view s) noexcept { n += s.size(); }
    void string(std::string_view s) noexcept { n += 2 + escaped_size(s); }
    void time(std::int64_t) noexcept { n += 2 + kTimeChars; }
    void base64_string(std::string_view s) noexcept { n += 2 + 4 * ((s.size() + 2) / 3); }
};

struct Writer {
    std::string& out;
    void literal(std::string_view s) { out.append(s); }
    void string(std::string_view s) {
        out.push_back('"');
        append_escaped(out, s);
        out.push_back('"');
    }
    void time(std::int64_t epoch_ms) {
        char text[kTimeChars];
        format_time(text, epoch_ms);
        out.push_back('"');
        out.append(text, kTimeChars);
        out.push_back('"');
    }
    void base64_string(std::string_view s) {
        out.push_back('"');
        base64_encode_to(out, s);
        out.push_back('"');
    }
};

std::size_t measure(const HubMessage& m, bool body_is_text) noexcept {
    SizeCounter counter;
    emit_element(counter, m, body_is_text);
    return counter.n;
}

}  // namespace

BatchBuilder::BatchBuilder(std::uint32_t max_batch_bytes) : max_(max_batch_bytes) {
    // The body never exceeds max_batch_bytes, so one reservation covers every batch this builder makes.
    buf_.reserve(max_);
    reset();
}

BatchBuilder::Add BatchBuilder::add(const HubMessage& m) {
    const bool body_is_text = is_utf8(m.body);
    const std::size_t element = measure(m, body_is_text);
    if (kEmptyBatchHubSize + element > max_) return Add::alone;
    const std::size_t separator = count_ == 0 ? 0 : 1;
    if (hub_size() + separator + element > max_) return Add::full;

    if (closed_) {
        buf_.pop_back();
        closed_ = false;
    }
    if (separator != 0) buf_.push_back(',');
    [[maybe_unused]] const std::size_t before = buf_.size();
    Writer writer{buf_};
    emit_element(writer, m, body_is_text);
    assert(buf_.size() - before == element);
    ++count_;
    return Add::added;
}

const std::string& BatchBuilder::body() {
    if (!closed_) {
        buf_.push_back(']');
        closed_ = true;
    }
    return buf_;
}

std::size_t BatchBuilder::hub_size() const noexcept {
    return buf_.size() + (closed_ ? 0 : 1) + kBatchPropertyBytes;
}

double BatchBuilder::fill() const noexcept {
    return max_ == 0 ? 1.0 : static_cast<double>(hub_size()) / static_cast<double>(max_);
}

void BatchBuilder::reset() {
    buf_.clear();
    buf_.push_back('[');
    count_ = 0;
    closed_ = false;
}

std::size_t BatchBuilder::element_size(const HubMessage& m) { return measure(m, is_utf8(m.body)); }

std::string BatchBuilder::topic(std::string_view gateway_device_id) {
    std::string t;
    t.reserve(gateway_device_id.size() + 90);
    t.append("devices/");
    t.append(gateway_device_id);
    t.append("/messages/events/%24.ct=");
    url_encode_to(t, kBatchContentType);
    t.append("&%24.ce=");
    url_encode_to(t, kBatchContentEncoding);
    return t;
}

void format_unbatched_topic(std::string& topic, std::string_view gateway_device_id, const HubMessage& m) {
    topic.clear();
    topic.append("devices/");
    topic.append(gateway_device_id);
    topic.append("/messages/events/");
    const std::size_t bag_start = topic.size();
    format_message_bag_to(topic, m);
    if (topic.size() != bag_start) topic.push_back('&');
    // The hub sees only the gateway's identity: these name the local device the message came from.
    topic.append("device-id=");
    url_encode_to(topic, m.device_id);
    if (!m.module_id.empty()) {
        topic.append("&module-id=");
        url_encode_to(topic, m.module_id);
    }
}

std::size_t unbatched_hub_size(const HubMessage& m) {
    std::size_t n = hub_size(m) + std::string_view("device-id").size() + m.device_id.size();
    if (!m.module_id.empty()) n += std::string_view("module-id").size() + m.module_id.size();
    return n;
}

}  // namespace hubgate::relay
