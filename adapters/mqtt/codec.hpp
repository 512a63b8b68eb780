// MQTT 3.1.1 packet codec: bytes <-> packets, no I/O. The MQTT session frames and decodes its read
// buffer with it (zero-copy views, no allocation) and appends its replies to a reused output buffer.
// Fuzzed by tests/fuzz/fuzz_mqtt_codec.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>
#include <vector>

namespace hubgate::mqtt {

enum class PacketType : std::uint8_t {
    connect = 1,
    connack,
    publish,
    puback,
    pubrec,
    pubrel,
    pubcomp,
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    pingreq,
    pingresp,
    disconnect,
};

// "CONNECT", "PUBLISH", ... for logs and reasons.
std::string_view packet_type_name(PacketType type) noexcept;

// The largest remaining length the 4-byte variable-length encoding can carry (§2.2.3).
inline constexpr std::uint32_t kMaxEncodableRemainingLength = 268'435'455;

struct FixedHeader {
    PacketType type{};
    std::uint8_t flags = 0;              // low nibble of the first byte
    std::uint32_t remaining_length = 0;
    std::uint8_t header_bytes = 0;       // 1 type byte + 1..4 length bytes

    std::size_t packet_size() const noexcept { return std::size_t{header_bytes} + remaining_length; }
};

enum class FrameStatus : std::uint8_t {
    complete,   // header and body are valid views; consume header.packet_size() bytes
    need_more,  // read more; once the length is known, header.packet_size() says how much is needed
    too_large,  // remaining length over the caller's maximum: close without reading the body
    malformed,  // reserved type, wrong reserved flags (§2.2.2), or a length longer than 4 bytes
};

// What next_frame() found at the start of a buffer. `reason` is static text, set unless complete.
struct Frame {
    FrameStatus status = FrameStatus::need_more;
    FixedHeader header{};
    std::span<const std::uint8_t> body{};  // remaining_length bytes after the fixed header
    std::string_view reason{};
};

// Looks at the start of `buf`: whether a whole packet is there, how long it is, or why not.
// The first byte is checked at once (packet type, reserved flags, PUBLISH QoS 3 / DUP with QoS 0);
// the remaining length is checked byte by byte, so a claim over `max_remaining_length` is refused
// as soon as its length bytes show it, before any body byte arrives. Never allocates.
Frame next_frame(std::span<const std::uint8_t> buf, std::uint32_t max_remaining_length) noexcept;

// ---- decoding -------------------------------------------------------------------------------

enum class DecodeStatus : std::uint8_t {
    ok,
    malformed,              // protocol violation: the session closes the connection
    unacceptable_protocol,  // CONNECT whose protocol is not "MQTT" level 4: CONNACK 0x01, then close
};

// A decoded packet or a static reason. Views inside the value point into the Frame's buffer.
template <class T>
struct [[nodiscard]] DecodeResult {
    DecodeStatus status = DecodeStatus::malformed;
    std::string_view reason{};
    T value{};

    bool ok() const noexcept { return status == DecodeStatus::ok; }
    explicit operator bool() const noexcept { return ok(); }
};

struct Will {
    std::uint8_t qos = 0;
    bool retain = false;
    std::string_view topic{};
    std::span<const std::uint8_t> message{};
};

struct ConnectPacket {
    // Defaults are MQTT 3.1.1 so that encode_connect() of a default packet is a valid CONNECT.
    std::string_view protocol_name = "MQTT";
    std::uint8_t protocol_level = 4;
    bool clean_session = true;
    std::uint16_t keep_alive = 0;  // seconds; 0 = no keep-alive
    // May be empty: §3.1.3.1 lets the server refuse an empty id with clean_session = 0 (CONNACK
    // 0x02); that is the session's decision, not a framing error.
    std::string_view client_id{};
    bool has_will = false;
    Will will{};
    bool has_username = false;
    std::string_view username{};
    bool has_password = false;
    std::span<const std::uint8_t> password{};  // binary per §3.1.3.5 (a SAS token in practice)
};

struct ConnackPacket {
    bool session_present = false;
    std::uint8_t return_code = 0;  // 0 accepted, 1 protocol, 2 identifier, 3 unavailable, 4 creds, 5 auth
};

struct PublishPacket {
    std::uint8_t qos = 0;  // 0, 1, or 2 (decoded so the session can close as IoT Hub does)
    bool dup = false;
    bool retain = false;
    std::string_view topic{};
    std::uint16_t packet_id = 0;  // 0 for QoS 0
    std::span<const std::uint8_t> payload{};
};

// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK carry only a packet identifier.
struct PacketIdPacket {
    std::uint16_t packet_id = 0;
};

// PINGREQ, PINGRESP and DISCONNECT have no variable header or payload.
struct EmptyPacket {};

struct TopicFilter {
    std::string_view filter{};
    std::uint8_t qos = 0;  // requested QoS (SUBSCRIBE); always 0 for UNSUBSCRIBE
};

// The topic filters of an already validated SUBSCRIBE / UNSUBSCRIBE payload, walked in place so
// decoding allocates nothing whatever the filter count.
class TopicFilterList {
public:
    class iterator {
    public:
        // Input, not forward: *it refers into the iterator itself (the entry is decoded on ++).
        using iterator_category = std::input_iterator_tag;
        using value_type = TopicFilter;
        using difference_type = std::ptrdiff_t;
        using pointer = const TopicFilter*;
        using reference = const TopicFilter&;

        iterator() = default;
        reference operator*() const noexcept { return current_; }
        pointer operator->() const noexcept { return &current_; }
        iterator& operator++() noexcept {
            load(next_);
            return *this;
        }
        iterator operator++(int) noexcept {
            auto copy = *this;
            ++*this;
            return copy;
        }
        bool operator==(const iterator& other) const noexcept { return at_ == other.at_; }

    private:
        friend class TopicFilterList;
        iterator(std::span<const std::uint8_t> bytes, std::size_t at, bool with_qos) noexcept
            : bytes_(bytes), with_qos_(with_qos) {
            load(at);
        }
        void load(std::size_t at) noexcept;

        std::span<const std::uint8_t> bytes_{};
        std::size_t at_ = 0;    // offset of the current entry; bytes_.size() at the end
        std::size_t next_ = 0;  // offset of the entry after it
        bool with_qos_ = false;
        TopicFilter current_{};
    };
    using const_iterator = iterator;

    TopicFilterList() = default;
    TopicFilterList(std::span<const std::uint8_t> bytes, std::size_t count, bool with_qos) noexcept
        : bytes_(bytes), count_(count), with_qos_(with_qos) {}

    iterator begin() const noexcept { return {bytes_, 0, with_qos_}; }
    iterator end() const noexcept { return {bytes_, bytes_.size(), with_qos_}; }
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }

private:
    std::span<const std::uint8_t> bytes_{};  // the payload: (u16 length, filter[, qos]) entries
    std::size_t count_ = 0;
    bool with_qos_ = false;
};

struct SubscribePacket {
    std::uint16_t packet_id = 0;
    TopicFilterList filters{};  // at least one
};

struct SubackPacket {
    std::uint16_t packet_id = 0;
    std::span<const std::uint8_t> return_codes{};  // 0x00, 0x01, 0x02 or 0x80 each
};

struct UnsubscribePacket {
    std::uint16_t packet_id = 0;
    TopicFilterList filters{};  // at least one; qos is 0
};

// Each decoder takes a complete Frame of its own type (anything else is malformed) and checks the
// whole packet: reserved flags, exact lengths, packet id != 0 where one is required, strings that
// are well-formed UTF-8 without U+0000 (§1.5.3), and no bytes left over. Never reads past `body`.
DecodeResult<ConnectPacket> decode_connect(const Frame& frame) noexcept;
DecodeResult<ConnackPacket> decode_connack(const Frame& frame) noexcept;
DecodeResult<PublishPacket> decode_publish(const Frame& frame) noexcept;
// PUBREC/PUBREL/PUBCOMP are decoded as "packet id only" so the session can answer QoS 2 flows
// (IoT Hub refuses QoS 2, so in practice it closes the connection on the PUBLISH instead).
DecodeResult<PacketIdPacket> decode_packet_id(const Frame& frame) noexcept;  // PUBACK..PUBCOMP, UNSUBACK
DecodeResult<SubscribePacket> decode_subscribe(const Frame& frame) noexcept;
DecodeResult<SubackPacket> decode_suback(const Frame& frame) noexcept;
DecodeResult<UnsubscribePacket> decode_unsubscribe(const Frame& frame) noexcept;
// PINGREQ, PINGRESP and DISCONNECT: checks that the remaining length is 0.
DecodeResult<EmptyPacket> decode_empty(const Frame& frame) noexcept;

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without U+0000:
// the rule §1.5.3 sets for every MQTT string.
bool is_valid_mqtt_utf8(std::string_view s) noexcept;

// ---- encoding -------------------------------------------------------------------------------
// Encoders append one whole packet to `out` (a buffer the session reuses). Those that can fail
// (a string over 65535 bytes, a packet over kMaxEncodableRemainingLength, a packet id of 0 where
// one is required, an empty filter list) return false and leave `out` unchanged.

using Buffer = std::vector<std::uint8_t>;

void encode_connack(Buffer& out, bool session_present, std::uint8_t return_code);
[[nodiscard]] bool encode_publish(Buffer& out, std::string_view topic, std::span<const std::uint8_t> payload,
                                  std::uint8_t qos, std::uint16_t packet_id, bool dup = false,
                                  bool retain = false);
[[nodiscard]] bool encode_publish(Buffer& out, std::string_view topic, std::string_view payload,
                                  std::uint8_t qos, std::uint16_t packet_id, bool dup = false,
                                  bool retain = false);
void encode_puback(Buffer& out, std::uint16_t packet_id);
// PUBACK, PUBREC, PUBREL (flags 0x2 as §3.6.1 requires), PUBCOMP or UNSUBACK.
void encode_packet_id(Buffer& out, PacketType type, std::uint16_t packet_id);
[[nodiscard]] bool encode_suback(Buffer& out, std::uint16_t packet_id,
                                 std::span<const std::uint8_t> return_codes);
void encode_unsuback(Buffer& out, std::uint16_t packet_id);
void encode_pingreq(Buffer& out);
void encode_pingresp(Buffer& out);
void encode_disconnect(Buffer& out);

// Client side: what tests, seeds and tools need to talk to the server.
[[nodiscard]] bool encode_connect(Buffer& out, const ConnectPacket& packet);
[[nodiscard]] bool encode_subscribe(Buffer& out, std::uint16_t packet_id, std::span<const TopicFilter> filters);
[[nodiscard]] bool encode_unsubscribe(Buffer& out, std::uint16_t packet_id,
                                      std::span<const std::string_view> filters);

}  // namespace hubgate::mqtt
