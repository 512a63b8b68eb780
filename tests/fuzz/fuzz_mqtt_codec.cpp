// libFuzzer target: feeds bytes through next_frame() and every decoder the way an MQTT session
// does (frame after frame out of one read buffer), and checks that what decodes re-encodes to the
// same packet. Seeds: corpus/mqtt_codec/. Run by tests/fuzz/run.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "adapters/mqtt/codec.hpp"

using namespace hubgate::mqtt;

namespace {

// The session's limit: 256 KB of message plus topic and header slack.
constexpr std::uint32_t kMaxRemainingLength = 262144 + 65536;

#define FUZZ_ASSERT(cond) \
    do {                  \
        if (!(cond)) std::abort(); \
    } while (false)

// Reads every byte of a view so ASan sees any view that points outside the input.
unsigned touch(std::span<const std::uint8_t> bytes) {
    unsigned sum = 0;
    for (std::uint8_t b : bytes) sum += b;
    return sum;
}
unsigned touch(std::string_view s) {
    unsigned sum = 0;
    for (char c : s) sum += static_cast<unsigned char>(c);
    return sum;
}

bool same(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

Frame reframe(const Buffer& out, PacketType type) {
    Frame f = next_frame(out, kMaxEncodableRemainingLength);
    FUZZ_ASSERT(f.status == FrameStatus::complete && f.header.type == type &&
                f.header.packet_size() == out.size());
    return f;
}

void check_publish(const PublishPacket& p) {
    Buffer out;
    FUZZ_ASSERT(encode_publish(out, p.topic, p.payload, p.qos, p.packet_id, p.dup, p.retain));
    auto again = decode_publish(reframe(out, PacketType::publish));
    FUZZ_ASSERT(again.ok());
    FUZZ_ASSERT(again.value.topic == p.topic && again.value.qos == p.qos && again.value.dup == p.dup &&
                again.value.retain == p.retain && again.value.packet_id == p.packet_id &&
                same(again.value.payload, p.payload));
}

void check_connect(const ConnectPacket& p) {
    Buffer out;
    FUZZ_ASSERT(encode_connect(out, p));
    auto again = decode_connect(reframe(out, PacketType::connect));
    FUZZ_ASSERT(again.ok());
    const auto& q = again.value;
    FUZZ_ASSERT(q.clean_session == p.clean_session && q.keep_alive == p.keep_alive &&
                q.client_id == p.client_id && q.has_will == p.has_will && q.will.qos == p.will.qos &&
                q.will.retain == p.will.retain && q.will.topic == p.will.topic &&
                same(q.will.message, p.will.message) && q.has_username == p.has_username &&
                q.username == p.username && q.has_password == p.has_password &&
                same(q.password, p.password));
}

void check_subscribe(const SubscribePacket& p) {
    std::vector<TopicFilter> filters(p.filters.begin(), p.filters.end());
    FUZZ_ASSERT(filters.size() == p.filters.size() && !filters.empty());
    Buffer out;
    FUZZ_ASSERT(encode_subscribe(out, p.packet_id, filters));
    auto again = decode_subscribe(reframe(out, PacketType::subscribe));
    FUZZ_ASSERT(again.ok() && again.value.packet_id == p.packet_id);
    std::size_t i = 0;
    for (const auto& f : again.value.filters) {
        FUZZ_ASSERT(i < filters.size() && f.filter == filters[i].filter && f.qos == filters[i].qos);
        ++i;
    }
    FUZZ_ASSERT(i == filters.size());
}

unsigned decode_one(const Frame& f) {
    unsigned sum = 0;
    switch (f.header.type) {
        case PacketType::connect: {
            auto r = decode_connect(f);
            if (r.status != DecodeStatus::malformed) {
                sum += touch(r.value.protocol_name);
            }
            if (r.ok()) {
                sum += touch(r.value.client_id) + touch(r.value.will.topic) + touch(r.value.will.message) +
                       touch(r.value.username) + touch(r.value.password);
                FUZZ_ASSERT(is_valid_mqtt_utf8(r.value.client_id) && is_valid_mqtt_utf8(r.value.username));
                check_connect(r.value);
            }
            break;
        }
        case PacketType::connack: {
            auto r = decode_connack(f);
            sum += r.ok() ? r.value.return_code : 0u;
            break;
        }
        case PacketType::publish: {
            auto r = decode_publish(f);
            if (r.ok()) {
                sum += touch(r.value.topic) + touch(r.value.payload);
                FUZZ_ASSERT(!r.value.topic.empty() && is_valid_mqtt_utf8(r.value.topic));
                FUZZ_ASSERT(r.value.qos <= 2 && (r.value.qos == 0) == (r.value.packet_id == 0));
                check_publish(r.value);
            }
            break;
        }
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp:
        case PacketType::unsuback: {
            auto r = decode_packet_id(f);
            if (r.ok()) {
                FUZZ_ASSERT(r.value.packet_id != 0);
                Buffer out;
                encode_packet_id(out, f.header.type, r.value.packet_id);
                FUZZ_ASSERT(decode_packet_id(reframe(out, f.header.type)).value.packet_id == r.value.packet_id);
            }
            break;
        }
        case PacketType::subscribe: {
            auto r = decode_subscribe(f);
            if (r.ok()) {
                for (const auto& filter : r.value.filters) sum += touch(filter.filter) + filter.qos;
                check_subscribe(r.value);
            }
            break;
        }
        case PacketType::suback: {
            auto r = decode_suback(f);
            if (r.ok()) sum += touch(r.value.return_codes);
            break;
        }
        case PacketType::unsubscribe: {
            auto r = decode_unsubscribe(f);
            if (r.ok()) {
                std::size_t n = 0;
                for (const auto& filter : r.value.filters) {
                    sum += touch(filter.filter);
                    ++n;
                }
                FUZZ_ASSERT(n == r.value.filters.size() && n > 0);
            }
            break;
        }
        case PacketType::pingreq:
        case PacketType::pingresp:
        case PacketType::disconnect: {
            auto r = decode_empty(f);
            FUZZ_ASSERT(r.ok() == f.body.empty());
            break;
        }
    }
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> rest(data, size);
    volatile unsigned sink = 0;
    while (!rest.empty()) {
        const Frame f = next_frame(rest, kMaxRemainingLength);
        if (f.status != FrameStatus::complete) {
            FUZZ_ASSERT(!f.reason.empty());
            break;
        }
        FUZZ_ASSERT(f.header.packet_size() <= rest.size() && f.body.size() == f.header.remaining_length &&
                    f.body.data() == rest.data() + f.header.header_bytes);
        // A session that has read one byte less must be told to wait, never handed a packet.
        FUZZ_ASSERT(next_frame(rest.first(f.header.packet_size() - 1), kMaxRemainingLength).status ==
                    FrameStatus::need_more);
        sink = sink + decode_one(f);
        rest = rest.subspan(f.header.packet_size());
    }
    return 0;
}
