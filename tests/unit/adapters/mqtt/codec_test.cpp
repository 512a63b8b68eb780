// MQTT 3.1.1 codec: byte-exact encodings from the spec's examples, framing at every split point,
// remaining-length limits, and every malformed case the session relies on the codec to catch.
#include "adapters/mqtt/codec.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace hubgate::mqtt;

namespace {

using Bytes = std::vector<std::uint8_t>;

// What the session will use: 256 KB of message plus topic and header slack.
constexpr std::uint32_t kSessionMax = 262144 + 65536;

Frame complete_frame(const Bytes& b) {
    Frame f = next_frame(b, kSessionMax);
    REQUIRE(f.status == FrameStatus::complete);
    REQUIRE(f.header.packet_size() == b.size());
    return f;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::vector<TopicFilter> collect(const TopicFilterList& list) {
    return std::vector<TopicFilter>(list.begin(), list.end());
}

// Spec §2.2.3 table, plus the single-byte boundary 127.
struct LengthCase {
    std::uint32_t value;
    Bytes encoded;
};
const std::vector<LengthCase> kLengthCases{
    {0, {0x00}},
    {127, {0x7F}},
    {128, {0x80, 0x01}},
    {16383, {0xFF, 0x7F}},
    {16384, {0x80, 0x80, 0x01}},
    {2097151, {0xFF, 0xFF, 0x7F}},
    {2097152, {0x80, 0x80, 0x80, 0x01}},
    {268435455, {0xFF, 0xFF, 0xFF, 0x7F}},
};

// A CONNECT with every field, as the spec's variable-header example (flags 0xCE, keep-alive 10).
const Bytes kFullConnect{0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A,
                         0x00, 0x01, 'c',  0x00, 0x01, 'w', 0x00, 0x01, 'm', 0x00, 0x01, 'u',
                         0x00, 0x01, 'p'};

// A minimal CONNECT: protocol "MQTT" level 4, flags as given, keep-alive 60, client id "d1".
Bytes connect_with(std::uint8_t flags, Bytes tail = {}) {
    Bytes body = cat({{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, flags, 0x00, 0x3C, 0x00, 0x02, 'd', '1'}, tail});
    return cat({{0x10, static_cast<std::uint8_t>(body.size())}, body});
}

Bytes publish_qos0_with_topic(const Bytes& topic) {
    Bytes body = cat({{0x00, static_cast<std::uint8_t>(topic.size())}, topic, text("x")});
    return cat({{0x30, static_cast<std::uint8_t>(body.size())}, body});
}

Bytes subscribe_with_filter(const Bytes& filter, std::uint8_t qos) {
    Bytes body = cat({{0x00, 0x01, 0x00, static_cast<std::uint8_t>(filter.size())}, filter, {qos}});
    return cat({{0x82, static_cast<std::uint8_t>(body.size())}, body});
}

template <class T>
void check_malformed(const DecodeResult<T>& r, std::string_view reason) {
    CHECK(r.status == DecodeStatus::malformed);
    CHECK(r.reason == reason);
}

}  // namespace

// ---- byte-exact encodings -------------------------------------------------------------------

TEST_CASE("CONNACK encodes as 0x20 0x02, the session-present flag, then the return code (§3.2)") {
    Bytes out;
    encode_connack(out, true, 0x00);
    encode_connack(out, false, 0x05);
    CHECK(out == Bytes{0x20, 0x02, 0x01, 0x00, 0x20, 0x02, 0x00, 0x05});
}

TEST_CASE("PUBACK, PUBREL and UNSUBACK encode as type byte, length 2, packet id (PUBREL with flags 0x2)") {
    Bytes out;
    encode_puback(out, 10);
    encode_packet_id(out, PacketType::pubrel, 10);
    encode_unsuback(out, 0x1234);
    CHECK(out == Bytes{0x40, 0x02, 0x00, 0x0A, 0x62, 0x02, 0x00, 0x0A, 0xB0, 0x02, 0x12, 0x34});
}

TEST_CASE("SUBACK encodes the spec example: packet id 10, return codes 0x00 0x02 0x80") {
    Bytes out;
    const std::array<std::uint8_t, 3> codes{0x00, 0x02, 0x80};
    REQUIRE(encode_suback(out, 10, codes));
    CHECK(out == Bytes{0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80});
}

TEST_CASE("PINGREQ, PINGRESP and DISCONNECT are two bytes each: C0 00, D0 00, E0 00") {
    Bytes out;
    encode_pingreq(out);
    encode_pingresp(out);
    encode_disconnect(out);
    CHECK(out == Bytes{0xC0, 0x00, 0xD0, 0x00, 0xE0, 0x00});
}

TEST_CASE("PUBLISH QoS 1 encodes the spec example variable header: topic a/b, packet id 10") {
    Bytes out;
    REQUIRE(encode_publish(out, "a/b", std::string_view{"hi"}, 1, 10));
    CHECK(out == Bytes{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'});
}

TEST_CASE("PUBLISH QoS 0 with retain has no packet id and flags 0x1") {
    Bytes out;
    REQUIRE(encode_publish(out, "a/b", std::string_view{"hi"}, 0, 0, false, true));
    CHECK(out == Bytes{0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'});
}

TEST_CASE("PUBLISH QoS 1 redelivery sets DUP: first byte 0x3A") {
    Bytes out;
    REQUIRE(encode_publish(out, "a/b", std::string_view{}, 1, 10, true));
    CHECK(out == Bytes{0x3A, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A});
}

TEST_CASE("CONNECT encodes the spec example flags 0xCE with will, username and password") {
    const std::array<std::uint8_t, 1> will_message{'m'};
    const std::array<std::uint8_t, 1> password{'p'};
    ConnectPacket p;
    p.clean_session = true;
    p.keep_alive = 10;
    p.client_id = "c";
    p.has_will = true;
    p.will.qos = 1;
    p.will.topic = "w";
    p.will.message = will_message;
    p.has_username = true;
    p.username = "u";
    p.has_password = true;
    p.password = password;
    Bytes out;
    REQUIRE(encode_connect(out, p));
    CHECK(out == kFullConnect);
}

TEST_CASE("SUBSCRIBE encodes the spec example: flags 0x2, packet id 10, a/b QoS 1, c/d QoS 2") {
    const std::array<TopicFilter, 2> filters{{{"a/b", 1}, {"c/d", 2}}};
    Bytes out;
    REQUIRE(encode_subscribe(out, 10, filters));
    CHECK(out == Bytes{0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02});
}

TEST_CASE("UNSUBSCRIBE encodes the spec example: flags 0x2, packet id 10, a/b and c/d") {
    const std::array<std::string_view, 2> filters{"a/b", "c/d"};
    Bytes out;
    REQUIRE(encode_unsubscribe(out, 10, filters));
    CHECK(out == Bytes{0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c', '/', 'd'});
}

TEST_CASE("encoders refuse what would be an invalid packet and leave the buffer unchanged") {
    Bytes out{0xAA};
    const std::string long_topic(65536, 't');
    CHECK_FALSE(encode_publish(out, long_topic, std::string_view{}, 0, 0));
    CHECK_FALSE(encode_publish(out, "a", std::string_view{}, 1, 0));    // QoS 1 needs a packet id
    CHECK_FALSE(encode_publish(out, "a", std::string_view{}, 3, 1));    // QoS 3 does not exist
    CHECK_FALSE(encode_publish(out, "a", std::string_view{}, 0, 0, true));  // DUP on QoS 0
    CHECK_FALSE(encode_suback(out, 1, std::span<const std::uint8_t>{}));
    CHECK_FALSE(encode_subscribe(out, 1, std::span<const TopicFilter>{}));
    CHECK_FALSE(encode_unsubscribe(out, 0, std::array<std::string_view, 1>{"a"}));
    CHECK(out == Bytes{0xAA});
}

// ---- round trips ----------------------------------------------------------------------------

TEST_CASE("CONNECT round trip keeps every field, including will and binary password") {
    const Bytes will_message{0x00, 0xFF, 0x10};
    const Bytes password = text("SharedAccessSignature sr=h%2Fdevices%2Fd1&sig=abc&se=1");
    ConnectPacket p;
    p.clean_session = false;
    p.keep_alive = 240;
    p.client_id = "d1";
    p.has_will = true;
    p.will.qos = 2;
    p.will.retain = true;
    p.will.topic = "devices/d1/will";
    p.will.message = will_message;
    p.has_username = true;
    p.username = "hub.azure-devices.net/d1/?api-version=2021-04-12";
    p.has_password = true;
    p.password = password;
    Bytes out;
    REQUIRE(encode_connect(out, p));

    auto r = decode_connect(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(r.value.protocol_name == "MQTT");
    CHECK(r.value.protocol_level == 4);
    CHECK_FALSE(r.value.clean_session);
    CHECK(r.value.keep_alive == 240);
    CHECK(r.value.client_id == "d1");
    CHECK(r.value.has_will);
    CHECK(r.value.will.qos == 2);
    CHECK(r.value.will.retain);
    CHECK(r.value.will.topic == "devices/d1/will");
    CHECK(Bytes(r.value.will.message.begin(), r.value.will.message.end()) == will_message);
    CHECK(r.value.has_username);
    CHECK(r.value.username == p.username);
    CHECK(r.value.has_password);
    CHECK(Bytes(r.value.password.begin(), r.value.password.end()) == password);
}

TEST_CASE("CONNECT without will, username or password decodes with an empty client id allowed") {
    auto b = Bytes{0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00};
    auto r = decode_connect(complete_frame(b));
    REQUIRE(r.ok());
    CHECK(r.value.clean_session);
    CHECK(r.value.client_id.empty());
    CHECK_FALSE(r.value.has_will);
    CHECK_FALSE(r.value.has_username);
    CHECK_FALSE(r.value.has_password);
}

TEST_CASE("CONNACK round trip keeps session present and return code") {
    Bytes out;
    encode_connack(out, true, 0);
    auto r = decode_connack(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(r.value.session_present);
    CHECK(r.value.return_code == 0);
}

TEST_CASE("PUBLISH round trip for QoS 0, 1 and 2 keeps flags, topic, packet id and payload") {
    const std::string topic = "devices/d1/messages/events/%24.mid=1&%24.ct=application%2Fjson&k=v";
    const Bytes payload{'{', '}', 0x00, 0xFF};
    for (std::uint8_t qos = 0; qos <= 2; ++qos) {
        CAPTURE(qos);
        Bytes out;
        const bool dup = qos > 0;
        REQUIRE(encode_publish(out, topic, payload, qos, qos > 0 ? 7 : 0, dup, qos == 2));
        auto r = decode_publish(complete_frame(out));
        REQUIRE(r.ok());
        CHECK(r.value.qos == qos);
        CHECK(r.value.dup == dup);
        CHECK(r.value.retain == (qos == 2));
        CHECK(r.value.topic == topic);
        CHECK(r.value.packet_id == (qos > 0 ? 7 : 0));
        CHECK(Bytes(r.value.payload.begin(), r.value.payload.end()) == payload);
    }
}

TEST_CASE("decoded PUBLISH topic and payload are views into the read buffer (zero-copy)") {
    Bytes out;
    REQUIRE(encode_publish(out, "a/b", std::string_view{"hi"}, 1, 10));
    auto r = decode_publish(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(reinterpret_cast<const std::uint8_t*>(r.value.topic.data()) == out.data() + 4);
    CHECK(r.value.payload.data() == out.data() + 9);
}

TEST_CASE("PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK round trip as packet id only") {
    for (auto type : {PacketType::puback, PacketType::pubrec, PacketType::pubrel, PacketType::pubcomp,
                      PacketType::unsuback}) {
        CAPTURE(packet_type_name(type));
        Bytes out;
        encode_packet_id(out, type, 0xBEEF);
        auto f = complete_frame(out);
        CHECK(f.header.type == type);
        auto r = decode_packet_id(f);
        REQUIRE(r.ok());
        CHECK(r.value.packet_id == 0xBEEF);
    }
}

TEST_CASE("SUBSCRIBE round trip lists the C2D filter and its requested QoS") {
    const std::array<TopicFilter, 2> filters{{{"devices/d1/messages/devicebound/#", 1}, {"$iothub/methods/POST/#", 0}}};
    Bytes out;
    REQUIRE(encode_subscribe(out, 3, filters));
    auto r = decode_subscribe(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(r.value.packet_id == 3);
    REQUIRE(r.value.filters.size() == 2);
    auto got = collect(r.value.filters);
    REQUIRE(got.size() == 2);
    CHECK(got[0].filter == "devices/d1/messages/devicebound/#");
    CHECK(got[0].qos == 1);
    CHECK(got[1].filter == "$iothub/methods/POST/#");
    CHECK(got[1].qos == 0);
}

TEST_CASE("SUBACK round trip keeps packet id and return codes") {
    const std::array<std::uint8_t, 2> codes{0x01, 0x80};
    Bytes out;
    REQUIRE(encode_suback(out, 3, codes));
    auto r = decode_suback(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(r.value.packet_id == 3);
    CHECK(Bytes(r.value.return_codes.begin(), r.value.return_codes.end()) == Bytes{0x01, 0x80});
}

TEST_CASE("UNSUBSCRIBE round trip lists its filters") {
    const std::array<std::string_view, 2> filters{"devices/d1/messages/devicebound/#", "a/+"};
    Bytes out;
    REQUIRE(encode_unsubscribe(out, 9, filters));
    auto r = decode_unsubscribe(complete_frame(out));
    REQUIRE(r.ok());
    CHECK(r.value.packet_id == 9);
    auto got = collect(r.value.filters);
    REQUIRE(got.size() == 2);
    CHECK(got[0].filter == filters[0]);
    CHECK(got[1].filter == filters[1]);
}

TEST_CASE("PINGREQ, PINGRESP and DISCONNECT round trip as empty packets of their type") {
    Bytes out;
    encode_pingreq(out);
    encode_pingresp(out);
    encode_disconnect(out);
    std::span<const std::uint8_t> rest(out);
    for (auto type : {PacketType::pingreq, PacketType::pingresp, PacketType::disconnect}) {
        auto f = next_frame(rest, kSessionMax);
        REQUIRE(f.status == FrameStatus::complete);
        CHECK(f.header.type == type);
        CHECK(decode_empty(f).ok());
        rest = rest.subspan(f.header.packet_size());
    }
    CHECK(rest.empty());
}

TEST_CASE("a buffer holding several packets and a partial one yields each complete packet, then need_more") {
    Bytes out;
    REQUIRE(encode_publish(out, "t/1", std::string_view{"a"}, 1, 1));
    REQUIRE(encode_publish(out, "t/2", std::string_view{"b"}, 0, 0));
    encode_pingreq(out);
    REQUIRE(encode_publish(out, "t/3", std::string_view{"c"}, 1, 2));
    out.pop_back();  // the last packet is still arriving

    std::span<const std::uint8_t> rest(out);
    std::vector<std::string_view> topics;
    int pings = 0;
    Frame f;
    while ((f = next_frame(rest, kSessionMax)).status == FrameStatus::complete) {
        if (f.header.type == PacketType::publish) {
            auto r = decode_publish(f);
            REQUIRE(r.ok());
            topics.push_back(r.value.topic);
        } else {
            CHECK(f.header.type == PacketType::pingreq);
            ++pings;
        }
        rest = rest.subspan(f.header.packet_size());
    }
    CHECK(f.status == FrameStatus::need_more);
    CHECK(f.header.packet_size() == rest.size() + 1);
    CHECK(topics == std::vector<std::string_view>{"t/1", "t/2"});
    CHECK(pings == 1);
}

// ---- framing --------------------------------------------------------------------------------

TEST_CASE("every proper prefix of a valid packet is need_more, the whole packet is complete") {
    Bytes big_publish;
    REQUIRE(encode_publish(big_publish, "devices/d1/messages/events/", std::string(300, 'x'), 1, 5));
    const std::array<TopicFilter, 1> filters{{{"devices/d1/messages/devicebound/#", 1}}};
    Bytes subscribe;
    REQUIRE(encode_subscribe(subscribe, 1, filters));
    Bytes ping;
    encode_pingreq(ping);

    for (const Bytes* packet : std::array<const Bytes*, 4>{&kFullConnect, &big_publish, &subscribe, &ping}) {
        CAPTURE(packet->size());
        for (std::size_t n = 0; n < packet->size(); ++n) {
            CAPTURE(n);
            auto f = next_frame(std::span<const std::uint8_t>(packet->data(), n), kSessionMax);
            CHECK(f.status == FrameStatus::need_more);
        }
        auto f = next_frame(*packet, kSessionMax);
        CHECK(f.status == FrameStatus::complete);
        CHECK(f.header.packet_size() == packet->size());
    }
}

TEST_CASE("once the length bytes are in, need_more reports the size of the whole packet") {
    Bytes publish;
    REQUIRE(encode_publish(publish, "a", std::string(200, 'x'), 0, 0));  // remaining length 203: 2 bytes
    auto f = next_frame(std::span<const std::uint8_t>(publish.data(), 10), kSessionMax);
    CHECK(f.status == FrameStatus::need_more);
    CHECK(f.header.header_bytes == 3);
    CHECK(f.header.remaining_length == 203);
    CHECK(f.header.packet_size() == publish.size());
}

TEST_CASE("remaining length boundaries decode from the spec table (127/128, 16383/16384, 2097151/2097152, 268435455)") {
    for (const auto& c : kLengthCases) {
        CAPTURE(c.value);
        Bytes header = cat({{0x30}, c.encoded});
        auto f = next_frame(header, kMaxEncodableRemainingLength);
        CHECK(f.header.remaining_length == c.value);
        CHECK(f.header.header_bytes == 1 + c.encoded.size());
        CHECK(f.status == (c.value == 0 ? FrameStatus::complete : FrameStatus::need_more));
    }
}

TEST_CASE("remaining length boundaries encode as the spec table up to 2097152") {
    for (const auto& c : kLengthCases) {
        if (c.value < 3 || c.value > 2097152) continue;
        CAPTURE(c.value);
        Bytes out;
        // topic "t" (3 bytes with its length) + payload = the remaining length
        REQUIRE(encode_publish(out, "t", std::string(c.value - 3, 'p'), 0, 0));
        CHECK(Bytes(out.begin() + 1, out.begin() + 1 + static_cast<std::ptrdiff_t>(c.encoded.size())) == c.encoded);
        CHECK(out.size() == 1 + c.encoded.size() + c.value);
        auto f = next_frame(out, kMaxEncodableRemainingLength);
        CHECK(f.status == FrameStatus::complete);
        CHECK(f.header.remaining_length == c.value);
    }
}

TEST_CASE("a remaining length encoded in 5 bytes is malformed") {
    const Bytes five{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    auto f = next_frame(five, kMaxEncodableRemainingLength);
    CHECK(f.status == FrameStatus::malformed);
    CHECK(f.reason == "remaining length encoded in more than 4 bytes");
    // The fourth continuation bit alone already proves it.
    const Bytes four_continued{0x30, 0x80, 0x80, 0x80, 0x80};
    CHECK(next_frame(four_continued, kMaxEncodableRemainingLength).status == FrameStatus::malformed);
}

TEST_CASE("a 256 MB remaining length is too_large from its 5 header bytes, with no body") {
    const Bytes claim{0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    auto f = next_frame(claim, kSessionMax);
    CHECK(f.status == FrameStatus::too_large);
    CHECK(f.reason == "remaining length over the maximum packet size");
}

TEST_CASE("an oversize claim is too_large before its last length byte arrives") {
    const Bytes partial{0x30, 0xFF, 0xFF, 0xFF};  // at least 2097151 whatever follows
    CHECK(next_frame(partial, kSessionMax).status == FrameStatus::too_large);
}

TEST_CASE("a remaining length equal to the maximum is accepted, one more is too_large") {
    constexpr std::uint32_t max = 200;
    Bytes at_max;
    REQUIRE(encode_publish(at_max, "t", std::string(max - 3, 'p'), 0, 0));
    CHECK(next_frame(at_max, max).status == FrameStatus::complete);
    Bytes over;
    REQUIRE(encode_publish(over, "t", std::string(max - 2, 'p'), 0, 0));
    CHECK(next_frame(over, max).status == FrameStatus::too_large);
    CHECK(next_frame(std::span<const std::uint8_t>(over.data(), 3), max).status == FrameStatus::too_large);
}

// ---- malformed ------------------------------------------------------------------------------

TEST_CASE("packet types 0 and 15 are reserved and malformed") {
    const Bytes zero{0x00, 0x00};
    const Bytes fifteen{0xF0, 0x00};
    auto f0 = next_frame(zero, kSessionMax);
    CHECK(f0.status == FrameStatus::malformed);
    CHECK(f0.reason == "reserved packet type 0");
    auto f15 = next_frame(fifteen, kSessionMax);
    CHECK(f15.status == FrameStatus::malformed);
    CHECK(f15.reason == "reserved packet type 15");
}

TEST_CASE("SUBSCRIBE with flags 0x0 is malformed with reason naming the flags (§2.2.2)") {
    const Bytes b{0x80, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x00};
    auto f = next_frame(b, kSessionMax);
    CHECK(f.status == FrameStatus::malformed);
    CHECK(f.reason == "SUBSCRIBE with reserved flags 0x0 (must be 0x2)");
}

TEST_CASE("every non-PUBLISH type with flags other than its required value is malformed from the first byte") {
    for (unsigned type = 1; type <= 14; ++type) {
        if (type == 3) continue;
        const unsigned required = (type == 6 || type == 8 || type == 10) ? 0x2 : 0x0;
        for (unsigned flags = 0; flags < 16; ++flags) {
            CAPTURE(type);
            CAPTURE(flags);
            const Bytes b{static_cast<std::uint8_t>((type << 4) | flags)};
            auto f = next_frame(b, kSessionMax);
            CHECK((f.status == FrameStatus::malformed) == (flags != required));
        }
    }
}

TEST_CASE("UNSUBSCRIBE and PUBREL with flags 0x0 are malformed") {
    const Bytes unsubscribe{0xA0};
    const Bytes pubrel{0x60};
    CHECK(next_frame(unsubscribe, kSessionMax).reason == "UNSUBSCRIBE with reserved flags 0x0 (must be 0x2)");
    CHECK(next_frame(pubrel, kSessionMax).reason == "PUBREL with reserved flags 0x0 (must be 0x2)");
}

TEST_CASE("PUBLISH with QoS 3 is malformed from its first byte") {
    const Bytes qos3{0x36};
    auto f = next_frame(qos3, kSessionMax);
    CHECK(f.status == FrameStatus::malformed);
    CHECK(f.reason == "PUBLISH with QoS 3 (§3.3.1.2)");
}

TEST_CASE("PUBLISH with QoS 2 decodes and reports qos 2 so the session can refuse it") {
    const Bytes qos2{0x34, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01};
    auto r = decode_publish(complete_frame(qos2));
    REQUIRE(r.ok());
    CHECK(r.value.qos == 2);
}

TEST_CASE("PUBLISH QoS 0 with DUP set is malformed (§3.3.1.1)") {
    const Bytes b{0x38, 0x05, 0x00, 0x03, 'a', '/', 'b'};
    auto f = next_frame(b, kSessionMax);
    CHECK(f.status == FrameStatus::malformed);
    CHECK(f.reason == "PUBLISH with DUP set on QoS 0 (§3.3.1.1)");
}

TEST_CASE("PUBLISH with a zero-length topic is malformed") {
    check_malformed(decode_publish(complete_frame(publish_qos0_with_topic({}))),
                    "PUBLISH with a zero-length topic (§4.7.3)");
}

TEST_CASE("PUBLISH whose topic length runs past the end of the packet is malformed") {
    const Bytes b{0x30, 0x05, 0x00, 0x0A, 'a', '/', 'b'};
    check_malformed(decode_publish(complete_frame(b)), "PUBLISH topic runs past the end of the packet");
}

TEST_CASE("PUBLISH QoS 1 without room for its packet id is malformed") {
    const Bytes b{0x32, 0x06, 0x00, 0x03, 'a', '/', 'b', 0x00};
    check_malformed(decode_publish(complete_frame(b)), "PUBLISH ends before its packet id");
}

TEST_CASE("PUBLISH QoS 1 with packet id 0 is malformed") {
    const Bytes b{0x32, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x00};
    check_malformed(decode_publish(complete_frame(b)), "PUBLISH with packet id 0");
}

TEST_CASE("PUBLISH topic with a wildcard is malformed (§3.3.2.1)") {
    check_malformed(decode_publish(complete_frame(publish_qos0_with_topic(text("a/+")))),
                    "PUBLISH topic contains a wildcard ('+' or '#') (§3.3.2.1)");
    check_malformed(decode_publish(complete_frame(publish_qos0_with_topic(text("a/#")))),
                    "PUBLISH topic contains a wildcard ('+' or '#') (§3.3.2.1)");
}

TEST_CASE("PUBLISH topics that are not valid UTF-8 or contain U+0000 are malformed (§1.5.3)") {
    const std::vector<Bytes> bad{
        {'a', 0x00, 'b'},      // U+0000
        {0xC0, 0x80},          // overlong U+0000
        {0xE0, 0x80, 0xAF},    // overlong '/'
        {0xED, 0xA0, 0x80},    // UTF-16 surrogate D800
        {0xF4, 0x90, 0x80, 0x80},  // past U+10FFFF
        {0x80},                // lone continuation byte
        {'a', 0xE2, 0x82},     // truncated sequence
        {0xFF},
    };
    for (const auto& topic : bad) {
        CAPTURE(topic.size());
        check_malformed(decode_publish(complete_frame(publish_qos0_with_topic(topic))),
                        "PUBLISH topic is not valid UTF-8 or contains U+0000");
    }
}

TEST_CASE("multi-byte UTF-8 topics up to U+10FFFF are accepted") {
    const Bytes topic{'t', '/', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x8F, 0xBF, 0xBF};
    auto r = decode_publish(complete_frame(publish_qos0_with_topic(topic)));
    CHECK(r.ok());
}

TEST_CASE("CONNECT with protocol MQIsdp level 3 (MQTT 3.1) is unacceptable_protocol, not malformed") {
    Bytes b{0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x02, 'd', '1'};
    auto r = decode_connect(complete_frame(b));
    CHECK(r.status == DecodeStatus::unacceptable_protocol);
    CHECK(r.value.protocol_name == "MQIsdp");
    CHECK(r.value.protocol_level == 3);
}

TEST_CASE("CONNECT with protocol MQTT at level 5 or 3 is unacceptable_protocol") {
    for (std::uint8_t level : {std::uint8_t{3}, std::uint8_t{5}}) {
        CAPTURE(level);
        Bytes b = connect_with(0x02);
        b[8] = level;
        auto r = decode_connect(complete_frame(b));
        CHECK(r.status == DecodeStatus::unacceptable_protocol);
        CHECK(r.reason == "CONNECT protocol is not MQTT 3.1.1 (\"MQTT\" level 4)");
    }
}

TEST_CASE("CONNECT with a password flag but no username flag is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x42, {0x00, 0x01, 'p'}))),
                    "CONNECT with a password flag but no username flag (§3.1.2.9)");
}

TEST_CASE("CONNECT with will QoS or will retain but no will flag is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x0A))),  // will QoS 1
                    "CONNECT with will QoS or will retain but no will flag (§3.1.2.6)");
    check_malformed(decode_connect(complete_frame(connect_with(0x22))),  // will retain
                    "CONNECT with will QoS or will retain but no will flag (§3.1.2.6)");
}

TEST_CASE("CONNECT with will QoS 3 is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x1E, {0x00, 0x01, 'w', 0x00, 0x00}))),
                    "CONNECT with will QoS 3 (§3.1.2.6)");
}

TEST_CASE("CONNECT with the reserved connect flag set is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x03))),
                    "CONNECT with reserved connect flag set (§3.1.2.3)");
}

TEST_CASE("CONNECT whose username flag announces a missing username is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x82))),
                    "CONNECT username runs past the end of the packet");
}

TEST_CASE("CONNECT with a client id that is not valid UTF-8 is malformed") {
    Bytes b = connect_with(0x02);
    b[b.size() - 1] = 0xC0;
    check_malformed(decode_connect(complete_frame(b)), "CONNECT client id is not valid UTF-8 or contains U+0000");
}

TEST_CASE("CONNECT with a username containing U+0000 is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x82, {0x00, 0x02, 'u', 0x00}))),
                    "CONNECT username is not valid UTF-8 or contains U+0000");
}

TEST_CASE("CONNECT with bytes after its last field is malformed") {
    check_malformed(decode_connect(complete_frame(connect_with(0x02, {0x00}))),
                    "CONNECT with bytes after the fields its flags announce");
}

TEST_CASE("CONNECT truncated inside the protocol name is malformed") {
    const Bytes b{0x10, 0x03, 0x00, 0x04, 'M'};
    check_malformed(decode_connect(complete_frame(b)), "CONNECT protocol name runs past the end of the packet");
}

TEST_CASE("SUBSCRIBE with no topic filters is malformed") {
    const Bytes b{0x82, 0x02, 0x00, 0x01};
    check_malformed(decode_subscribe(complete_frame(b)), "SUBSCRIBE with no topic filters (§3.8.3)");
}

TEST_CASE("SUBSCRIBE with packet id 0 is malformed") {
    const Bytes b{0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00};
    check_malformed(decode_subscribe(complete_frame(b)), "SUBSCRIBE with packet id 0");
}

TEST_CASE("SUBSCRIBE with requested QoS 3 is malformed") {
    check_malformed(decode_subscribe(complete_frame(subscribe_with_filter(text("a/#"), 3))),
                    "SUBSCRIBE with requested QoS 3 (must be 0, 1 or 2)");
}

TEST_CASE("SUBSCRIBE with reserved bits in the requested QoS byte is malformed") {
    check_malformed(decode_subscribe(complete_frame(subscribe_with_filter(text("a/#"), 0x41))),
                    "SUBSCRIBE requested QoS byte with reserved bits set (§3.8.3.1)");
}

TEST_CASE("SUBSCRIBE with a filter but no requested QoS byte is malformed") {
    const Bytes b{0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    check_malformed(decode_subscribe(complete_frame(b)), "SUBSCRIBE topic filter without its requested QoS byte");
}

TEST_CASE("SUBSCRIBE with a zero-length or non-UTF-8 topic filter is malformed") {
    check_malformed(decode_subscribe(complete_frame(subscribe_with_filter({}, 1))),
                    "SUBSCRIBE with a zero-length topic filter (§4.7.3)");
    check_malformed(decode_subscribe(complete_frame(subscribe_with_filter({'a', 0x00}, 1))),
                    "SUBSCRIBE topic filter is not valid UTF-8 or contains U+0000");
}

TEST_CASE("SUBSCRIBE whose filter length runs past the end is malformed") {
    const Bytes b{0x82, 0x06, 0x00, 0x01, 0x00, 0x09, 'a', 0x01};
    check_malformed(decode_subscribe(complete_frame(b)), "SUBSCRIBE topic filter runs past the end of the packet");
}

TEST_CASE("UNSUBSCRIBE with no topic filters or packet id 0 is malformed") {
    const Bytes none{0xA2, 0x02, 0x00, 0x01};
    check_malformed(decode_unsubscribe(complete_frame(none)), "UNSUBSCRIBE with no topic filters (§3.10.3)");
    const Bytes zero_id{0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'};
    check_malformed(decode_unsubscribe(complete_frame(zero_id)), "UNSUBSCRIBE with packet id 0");
}

TEST_CASE("PUBACK with packet id 0 or a remaining length other than 2 is malformed") {
    const Bytes zero{0x40, 0x02, 0x00, 0x00};
    check_malformed(decode_packet_id(complete_frame(zero)), "PUBACK with packet id 0");
    const Bytes three{0x40, 0x03, 0x00, 0x01, 0x00};
    check_malformed(decode_packet_id(complete_frame(three)), "PUBACK with a remaining length other than 2");
}

TEST_CASE("PINGREQ and DISCONNECT with a non-empty body are malformed") {
    const Bytes ping{0xC0, 0x01, 0x00};
    check_malformed(decode_empty(complete_frame(ping)), "PINGREQ with a remaining length other than 0");
    const Bytes disconnect{0xE0, 0x01, 0x00};
    check_malformed(decode_empty(complete_frame(disconnect)), "DISCONNECT with a remaining length other than 0");
}

TEST_CASE("CONNACK with reserved acknowledge flags is malformed") {
    const Bytes b{0x20, 0x02, 0x02, 0x00};
    check_malformed(decode_connack(complete_frame(b)), "CONNACK with reserved acknowledge flags set (§3.2.2.1)");
}

TEST_CASE("SUBACK with no return codes or an undefined return code is malformed") {
    const Bytes none{0x90, 0x02, 0x00, 0x01};
    check_malformed(decode_suback(complete_frame(none)), "SUBACK with no return codes");
    const Bytes bad_code{0x90, 0x03, 0x00, 0x01, 0x03};
    check_malformed(decode_suback(complete_frame(bad_code)), "SUBACK with a return code other than 0x00-0x02 or 0x80");
}

TEST_CASE("a decoder given another packet type or an incomplete frame refuses it") {
    Bytes ping;
    encode_pingreq(ping);
    auto f = complete_frame(ping);
    CHECK(decode_publish(f).status == DecodeStatus::malformed);
    CHECK(decode_connect(f).status == DecodeStatus::malformed);
    CHECK(decode_packet_id(f).status == DecodeStatus::malformed);
    CHECK(decode_subscribe(f).status == DecodeStatus::malformed);

    Bytes publish;
    REQUIRE(encode_publish(publish, "a", std::string_view{"x"}, 0, 0));
    auto partial = next_frame(std::span<const std::uint8_t>(publish.data(), 3), kSessionMax);
    REQUIRE(partial.status == FrameStatus::need_more);
    CHECK(decode_publish(partial).status == DecodeStatus::malformed);
}
