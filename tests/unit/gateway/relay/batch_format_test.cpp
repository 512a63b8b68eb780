#include "gateway/relay/batch_format.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "gateway/model/crypto.hpp"
#include "gateway/model/property_bag.hpp"
#include "tests/unit/gateway/relay/alloc_counter.hpp"

using namespace hubgate;
using namespace hubgate::relay;
using nlohmann::ordered_json;

namespace {

constexpr std::uint32_t kDefaultMax = 262144;

HubMessage message(std::string body, std::string device = "sensor-1", std::string module = "") {
    HubMessage m;
    m.body = std::move(body);
    m.device_id = std::move(device);
    m.module_id = std::move(module);
    m.enqueued_ms = 1714566896789;  // 2024-05-01T12:34:56.789Z
    return m;
}

// A message with every system property and a mix of application properties.
HubMessage full_message() {
    HubMessage m = message("{\"temp\":21.5}", "sensor-1", "thermostats");
    m.system.message_id = "7f1c2d3e-0000-4000-8000-000000000001";
    m.system.correlation_id = "corr-42";
    m.system.user_id = "user-7";
    m.system.content_type = "application/json";
    m.system.content_encoding = "utf-8";
    m.system.creation_time = "2024-05-01T12:34:50.000Z";
    m.system.absolute_expiry_time = "2024-05-02T12:34:50.000Z";
    m.properties.set("alert", "high");
    m.properties.set("flag", std::nullopt);
    m.properties.set("quote\"d", "back\\slash \"and\" quote");
    m.properties.set("empty", "");
    return m;
}

// Parses a finished batch (fails the test if it is not valid JSON) and returns its elements.
ordered_json parse(BatchBuilder& b) {
    ordered_json doc;
    REQUIRE_NOTHROW(doc = ordered_json::parse(b.body()));
    REQUIRE(doc.is_array());
    return doc;
}

ordered_json single_element(const HubMessage& m) {
    BatchBuilder b(kDefaultMax);
    REQUIRE(b.add(m) == BatchBuilder::Add::added);
    auto doc = parse(b);
    REQUIRE(doc.size() == 1);
    return doc[0];
}

// The body bytes an element stands for: decoded from base64 when base64Encoded says so.
std::string element_body_bytes(const ordered_json& e) {
    const auto text = e.at("body").get<std::string>();
    if (!e.at("base64Encoded").get<bool>()) return text;
    auto decoded = base64_decode(text);
    REQUIRE(decoded.ok());
    return *decoded;
}

// Checks that an element carries exactly what the message holds.
void check_element(const ordered_json& e, const HubMessage& m) {
    CHECK(e.at("deviceId") == m.device_id);
    if (m.module_id.empty())
        CHECK(e.at("moduleId").is_null());
    else
        CHECK(e.at("moduleId") == m.module_id);
    CHECK(element_body_bytes(e) == m.body);
    std::size_t set = 0;
    auto check_system = [&](const char* key, const std::string& value) {
        if (value.empty()) {
            CHECK_FALSE(e.at("systemProperties").contains(key));
        } else {
            ++set;
            CHECK(e.at("systemProperties").at(key) == value);
        }
    };
    check_system("messageId", m.system.message_id);
    check_system("correlationId", m.system.correlation_id);
    check_system("userId", m.system.user_id);
    check_system("contentType", m.system.content_type);
    check_system("contentEncoding", m.system.content_encoding);
    check_system("creationTimeUtc", m.system.creation_time);
    check_system("absoluteExpiryTimeUtc", m.system.absolute_expiry_time);
    CHECK(e.at("systemProperties").size() == set);
    const auto& props = e.at("properties");
    REQUIRE(props.size() == m.properties.size());
    auto it = props.begin();
    for (const auto& p : m.properties) {
        CHECK(it.key() == p.name);
        if (p.value)
            CHECK(it.value() == *p.value);
        else
            CHECK(it.value().is_null());
        ++it;
    }
}

std::string ascii_body(std::size_t n) { return std::string(n, 'x'); }

}  // namespace

TEST_CASE("an element carries deviceId, moduleId, enqueuedTimeUtc, systemProperties, properties, body, base64Encoded") {
    const auto m = full_message();
    const auto e = single_element(m);
    const ordered_json expected = {
        {"deviceId", "sensor-1"},
        {"moduleId", "thermostats"},
        {"enqueuedTimeUtc", "2024-05-01T12:34:56.789Z"},
        {"systemProperties",
         {{"messageId", "7f1c2d3e-0000-4000-8000-000000000001"},
          {"correlationId", "corr-42"},
          {"userId", "user-7"},
          {"contentType", "application/json"},
          {"contentEncoding", "utf-8"},
          {"creationTimeUtc", "2024-05-01T12:34:50.000Z"},
          {"absoluteExpiryTimeUtc", "2024-05-02T12:34:50.000Z"}}},
        {"properties", {{"alert", "high"}, {"flag", nullptr}, {"quote\"d", "back\\slash \"and\" quote"}, {"empty", ""}}},
        {"body", "{\"temp\":21.5}"},
        {"base64Encoded", false},
    };
    CHECK(e == expected);
    check_element(e, m);
}

TEST_CASE("a message without a module has moduleId null") {
    const auto e = single_element(message("hi", "dev-9"));
    CHECK(e.at("deviceId") == "dev-9");
    CHECK(e.at("moduleId").is_null());
}

TEST_CASE("only the system properties that are set appear in systemProperties") {
    auto m = message("hi");
    m.system.correlation_id = "c-1";
    const auto e = single_element(m);
    CHECK(e.at("systemProperties") == ordered_json{{"correlationId", "c-1"}});
    CHECK(single_element(message("hi")).at("systemProperties") == ordered_json::object());
    CHECK(single_element(message("hi")).at("properties") == ordered_json::object());
}

TEST_CASE("application properties keep their order and a property without a value is JSON null") {
    auto m = message("x");
    m.properties.set("zeta", "1");
    m.properties.set("alpha", std::nullopt);
    m.properties.set("mid", "3");
    const auto e = single_element(m);
    std::vector<std::string> keys;
    for (auto it = e.at("properties").begin(); it != e.at("properties").end(); ++it) keys.push_back(it.key());
    CHECK(keys == std::vector<std::string>{"zeta", "alpha", "mid"});
    CHECK(e.at("properties").at("alpha").is_null());
    CHECK(e.at("properties").at("zeta") == "1");
}

TEST_CASE("a text body with quotes, backslashes and every control character round-trips as a JSON string") {
    std::string body = "\"quoted\" back\\slash /slash \x7f del ";
    for (int c = 0; c < 0x20; ++c) body.push_back(static_cast<char>(c));
    body += "end";
    const auto m = message(body);
    const auto e = single_element(m);
    CHECK(e.at("base64Encoded") == false);
    CHECK(e.at("body") == body);
}

TEST_CASE("a non-ASCII UTF-8 body goes as a JSON string with its characters unescaped") {
    const std::string body = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac \xef\xbf\xbf";
    BatchBuilder b(kDefaultMax);
    REQUIRE(b.add(message(body)) == BatchBuilder::Add::added);
    CHECK(b.body().find(body) != std::string::npos);  // raw UTF-8 in the text, not \u escapes
    const auto doc = parse(b);
    CHECK(doc[0].at("base64Encoded") == false);
    CHECK(doc[0].at("body") == body);
}

TEST_CASE("a body that is not valid UTF-8 goes as base64 and decodes to the original bytes") {
    const std::vector<std::string> bodies = {
        std::string("\xff"),                       // never valid
        std::string("ok \xe2\x82"),                // truncated sequence
        std::string("\xc0\xaf"),                   // overlong '/'
        std::string("\xe0\x80\xaf"),               // overlong 3-byte
        std::string("\xed\xa0\x80"),               // UTF-16 surrogate
        std::string("\xf4\x90\x80\x80"),           // above U+10FFFF
        std::string("\x80 lone continuation"),     // continuation without a lead byte
        std::string("\x00\x01\x02\xfe\xfd", 5),    // binary
        std::string("text then \xc3"),             // lead byte at the end
    };
    for (const auto& body : bodies) {
        CAPTURE(base64_encode(body));
        const auto e = single_element(message(body));
        CHECK(e.at("base64Encoded") == true);
        CHECK(e.at("body") == base64_encode(body));
        CHECK(element_body_bytes(e) == body);
    }
}

TEST_CASE("an empty body is an empty JSON string, not base64") {
    const auto e = single_element(message(""));
    CHECK(e.at("body") == "");
    CHECK(e.at("base64Encoded") == false);
}

TEST_CASE("enqueuedTimeUtc is ISO-8601 UTC with milliseconds from enqueued_ms") {
    auto at = [](std::int64_t ms) {
        auto m = message("x");
        m.enqueued_ms = ms;
        return single_element(m).at("enqueuedTimeUtc").get<std::string>();
    };
    CHECK(at(0) == "1970-01-01T00:00:00.000Z");
    CHECK(at(1) == "1970-01-01T00:00:00.001Z");
    CHECK(at(1714566896789) == "2024-05-01T12:34:56.789Z");
    CHECK(at(951868799999) == "2000-02-29T23:59:59.999Z");
    CHECK(at(253402300799999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("elements of a batch parse back to the messages, in the order they were added") {
    std::vector<HubMessage> ms = {full_message(), message("", "a"), message("\xff\xfe", "b", "m"),
                                  message("line\nbreak", "c")};
    BatchBuilder b(kDefaultMax);
    for (const auto& m : ms) REQUIRE(b.add(m) == BatchBuilder::Add::added);
    CHECK(b.count() == ms.size());
    const auto doc = parse(b);
    REQUIRE(doc.size() == ms.size());
    for (std::size_t i = 0; i < ms.size(); ++i) check_element(doc[i], ms[i]);
}

TEST_CASE("a batch's hub_size is its body plus the content type and encoding values") {
    BatchBuilder b(kDefaultMax);
    CHECK(b.empty());
    CHECK(b.hub_size() == 2 + 37 + 5);
    CHECK(kEmptyBatchHubSize == 44);
    REQUIRE(b.add(full_message()) == BatchBuilder::Add::added);
    REQUIRE(b.add(message("second")) == BatchBuilder::Add::added);
    const auto open_size = b.hub_size();
    CHECK(open_size == b.body().size() + kBatchContentType.size() + 5);
    CHECK(b.hub_size() == open_size);  // closing the array does not change the count
}

TEST_CASE("element_size is the exact length the element takes in the body") {
    for (const auto& m : {full_message(), message(""), message("\xff binary"), message("tab\there \x01 ctl", "d", "m")}) {
        BatchBuilder b(kDefaultMax);
        REQUIRE(b.add(m) == BatchBuilder::Add::added);
        CHECK(b.body().size() == 2 + BatchBuilder::element_size(m));
    }
}

TEST_CASE("the batch topic carries only the batch content type and utf-8 encoding") {
    CHECK(BatchBuilder::topic("gw-01") ==
          "devices/gw-01/messages/events/%24.ct=application%2Fvnd.microsoft.iothub.json&%24.ce=utf-8");
}

TEST_CASE("a batch whose hub_size is exactly max_batch_bytes is accepted and one byte more is full") {
    constexpr std::uint32_t max = 1024;
    const auto first = message(ascii_body(100));
    const auto e1 = BatchBuilder::element_size(first);
    const auto e2_empty = BatchBuilder::element_size(message(""));
    const auto exact_len = max - kEmptyBatchHubSize - e1 - 1 - e2_empty;

    BatchBuilder exact(max);
    REQUIRE(exact.add(first) == BatchBuilder::Add::added);
    CHECK(exact.add(message(ascii_body(exact_len))) == BatchBuilder::Add::added);
    CHECK(exact.hub_size() == max);
    CHECK(exact.fill() == 1.0);

    BatchBuilder over(max);
    REQUIRE(over.add(first) == BatchBuilder::Add::added);
    const auto before = over.hub_size();
    CHECK(over.add(message(ascii_body(exact_len + 1))) == BatchBuilder::Add::full);
    CHECK(over.count() == 1);
    CHECK(over.hub_size() == before);
    CHECK(parse(over).size() == 1);
}

TEST_CASE("a single element that exactly fills an empty batch is accepted and one byte more is alone") {
    constexpr std::uint32_t max = 2048;
    const auto len = max - kEmptyBatchHubSize - BatchBuilder::element_size(message(""));
    BatchBuilder b(max);
    CHECK(b.add(message(ascii_body(len))) == BatchBuilder::Add::added);
    CHECK(b.hub_size() == max);
    BatchBuilder c(max);
    CHECK(c.add(message(ascii_body(len + 1))) == BatchBuilder::Add::alone);
    CHECK(c.empty());
}

TEST_CASE("a message whose element is larger than max minus the envelope is alone and leaves the batch as it was") {
    constexpr std::uint32_t max = 4096;
    BatchBuilder b(max);
    REQUIRE(b.add(message("small")) == BatchBuilder::Add::added);
    const std::string body_before = std::string(b.body());
    // Escaping counts: 2100 newlines are 4200 bytes of element, so the limit is on the encoded size.
    const auto big = message(std::string(2100, '\n'));
    REQUIRE(BatchBuilder::element_size(big) > max - kEmptyBatchHubSize);
    CHECK(b.add(big) == BatchBuilder::Add::alone);
    CHECK(b.count() == 1);
    CHECK(b.body() == body_before);
}

TEST_CASE("a message with a 262144-byte body is alone at the default max_batch_bytes") {
    BatchBuilder b(kDefaultMax);
    CHECK(b.add(message(ascii_body(262144))) == BatchBuilder::Add::alone);
    CHECK(b.empty());
}

TEST_CASE("hub_size never exceeds max_batch_bytes over random sequences of adds, and every batch parses") {
    std::mt19937 rng(20240501);
    for (std::uint32_t max : {1024u, 4096u, 65536u, kDefaultMax}) {
        CAPTURE(max);
        BatchBuilder b(max);
        std::vector<HubMessage> pending;
        std::size_t alone = 0, batches = 0;
        auto flush = [&] {
            const auto doc = parse(b);
            REQUIRE(doc.size() == pending.size());
            for (std::size_t i = 0; i < pending.size(); ++i) check_element(doc[i], pending[i]);
            CHECK(b.hub_size() == b.body().size() + kBatchPropertyBytes);
            CHECK(b.hub_size() <= max);
            b.reset();
            pending.clear();
            ++batches;
        };
        for (int i = 0; i < 400; ++i) {
            // Sizes spread over the whole range, with a bias toward small messages.
            const std::size_t limit = (rng() % 4 == 0) ? max + max / 2 : max / 16;
            std::string body(rng() % (limit + 1), '\0');
            const int kind = static_cast<int>(rng() % 4);
            for (auto& ch : body) {
                const auto r = rng();
                switch (kind) {
                    case 0: ch = static_cast<char>('a' + r % 26); break;
                    case 1: ch = "ab\"\\\n\x01 "[r % 7]; break;        // text that needs escapes
                    case 2: ch = "ab\"\\\n\x01\xc3\xa9"[r % 8]; break;  // split UTF-8 -> base64
                    default: ch = static_cast<char>(r % 256); break;
                }
            }
            auto m = message(std::move(body), "dev-" + std::to_string(i % 7), i % 2 ? "mod" : "");
            if (i % 5 == 0) m.properties.set("seq", std::to_string(i));

            const auto element = BatchBuilder::element_size(m);
            const auto size_before = b.hub_size();
            switch (b.add(m)) {
                case BatchBuilder::Add::added:
                    pending.push_back(std::move(m));
                    CHECK(b.hub_size() == size_before + element + (pending.size() > 1 ? 1 : 0));
                    break;
                case BatchBuilder::Add::full:
                    CHECK(size_before + 1 + element > max);
                    CHECK(b.hub_size() == size_before);
                    flush();
                    REQUIRE(b.add(m) == BatchBuilder::Add::added);
                    pending.push_back(std::move(m));
                    break;
                case BatchBuilder::Add::alone:
                    CHECK(kEmptyBatchHubSize + element > max);
                    CHECK(b.hub_size() == size_before);
                    ++alone;
                    break;
            }
            CHECK(b.hub_size() <= max);
        }
        flush();
        CHECK(alone > 0);     // the sequence did reach the oversize case
        CHECK(batches > 1);   // and the full case
    }
}

TEST_CASE("200-byte messages fill a default batch to at least 99 percent") {
    BatchBuilder b(kDefaultMax);
    auto m = message(ascii_body(200), "sensor-0001", "thermostats");
    m.system.message_id = "7f1c2d3e-0000-4000-8000-000000000001";
    m.system.content_type = "application/json";
    m.properties.set("alert", "high");
    while (b.add(m) == BatchBuilder::Add::added) {
    }
    CHECK(b.count() > 100);
    CHECK(b.fill() >= 0.99);
    CHECK(b.fill() <= 1.0);
}

TEST_CASE("fill() is hub_size divided by max_batch_bytes") {
    BatchBuilder b(1000);
    CHECK(b.fill() == doctest::Approx(44.0 / 1000.0));
    REQUIRE(b.add(message("abc")) == BatchBuilder::Add::added);
    CHECK(b.fill() == doctest::Approx(static_cast<double>(b.hub_size()) / 1000.0));
    CHECK(b.max_batch_bytes() == 1000);
}

TEST_CASE("reset() empties the batch and reuses the same buffer") {
    BatchBuilder b(kDefaultMax);
    while (b.add(message(ascii_body(500))) == BatchBuilder::Add::added) {
    }
    const char* data = b.body().data();
    const auto capacity = b.body().capacity();
    b.reset();
    CHECK(b.empty());
    CHECK(b.count() == 0);
    CHECK(b.hub_size() == kEmptyBatchHubSize);
    CHECK(b.body() == "[]");
    b.reset();
    while (b.add(message(ascii_body(500))) == BatchBuilder::Add::added) {
    }
    CHECK(b.body().data() == data);
    CHECK(b.body().capacity() == capacity);
}

TEST_CASE("body() is idempotent and an add after body() reopens the array") {
    BatchBuilder b(kDefaultMax);
    REQUIRE(b.add(message("one")) == BatchBuilder::Add::added);
    const std::string first = b.body();
    CHECK(b.body() == first);
    REQUIRE(b.add(message("two")) == BatchBuilder::Add::added);
    const auto doc = parse(b);
    REQUIRE(doc.size() == 2);
    CHECK(doc[1].at("body") == "two");
}

TEST_CASE("adding text and binary messages to a builder allocates nothing") {
    BatchBuilder b(kDefaultMax);
    const auto text = full_message();
    const auto binary = message(std::string("\xff\x00\x01 bin", 6), "dev", "mod");
    // No doctest assertion inside the measured window: only the builder runs there.
    std::size_t added = 0;
    const auto before = hubgate::test::allocation_count();
    for (int i = 0; i < 50; ++i) {
        added += b.add(text) == BatchBuilder::Add::added;
        added += b.add(binary) == BatchBuilder::Add::added;
    }
    (void)b.body();
    b.reset();
    added += b.add(binary) == BatchBuilder::Add::added;
    const auto after = hubgate::test::allocation_count();
    CHECK(added == 101);
    CHECK(after == before);
}

TEST_CASE("the unbatched topic holds the message's bag, then device-id and module-id") {
    auto m = message("raw", "sensor 1", "thermo/stats");
    m.system.message_id = "mid-1";
    m.system.content_type = "application/json";
    m.properties.set("alert", "high");
    m.properties.set("flag", std::nullopt);
    std::string topic;
    format_unbatched_topic(topic, "gw-01", m);
    CHECK(topic ==
          "devices/gw-01/messages/events/%24.mid=mid-1&%24.ct=application%2Fjson&alert=high&flag"
          "&device-id=sensor%201&module-id=thermo%2Fstats");

    // The hub reads it back as the message's own properties plus the origin.
    const std::string prefix = "devices/gw-01/messages/events/";
    HubMessage back;
    REQUIRE_FALSE(apply_property_bag(std::string_view(topic).substr(prefix.size()), back).has_value());
    CHECK(back.system == m.system);
    REQUIRE(back.properties.size() == 4);
    CHECK(back.properties.find("flag")->value == std::nullopt);
    CHECK(back.properties.find("device-id")->value == "sensor 1");
    CHECK(back.properties.find("module-id")->value == "thermo/stats");
}

TEST_CASE("the unbatched topic leaves module-id out for a message without a module") {
    std::string topic = "previous contents are replaced";
    format_unbatched_topic(topic, "gw-01", message("raw", "dev-1"));
    CHECK(topic == "devices/gw-01/messages/events/device-id=dev-1");
}

TEST_CASE("formatting an unbatched topic into a grown string allocates nothing") {
    const auto m = full_message();
    std::string topic;
    format_unbatched_topic(topic, "gw-01", m);
    const auto before = hubgate::test::allocation_count();
    format_unbatched_topic(topic, "gw-01", m);
    CHECK(hubgate::test::allocation_count() == before);
}

TEST_CASE("unbatched_hub_size adds the device-id and module-id names and values") {
    auto m = full_message();
    CHECK(unbatched_hub_size(m) == hub_size(m) + 9 + m.device_id.size() + 9 + m.module_id.size());
    m.module_id.clear();
    CHECK(unbatched_hub_size(m) == hub_size(m) + 9 + m.device_id.size());
}
