#include "adapters/mqtt/codec.hpp"

#include <array>

namespace hubgate::mqtt {
namespace {

// ---- static reason texts --------------------------------------------------------------------
// Reasons are string_views into static storage so that the hot path never allocates; the ones that
// name a packet type or a flag value are generated at compile time into these tables.

constexpr std::array<std::string_view, 16> kTypeNames{
    "reserved packet type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
    "reserved packet type 15"};

struct ReasonText {
    std::array<char, 64> text{};
    std::size_t size = 0;

    constexpr void put(std::string_view s) {
        for (char c : s) text[size++] = c;
    }
    constexpr void put_hex(unsigned nibble) { text[size++] = "0123456789ABCDEF"[nibble & 0xF]; }
    constexpr std::string_view view() const { return {text.data(), size}; }
};

// §2.2.2: PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010; every other type but PUBLISH carries 0.
constexpr unsigned required_flags(unsigned type) {
    return type == 6 || type == 8 || type == 10 ? 0x2 : 0x0;
}

constexpr auto kFlagReasons = [] {
    std::array<std::array<ReasonText, 16>, 16> table{};
    for (unsigned type = 0; type < 16; ++type) {
        for (unsigned flags = 0; flags < 16; ++flags) {
            auto& r = table[type][flags];
            r.put(kTypeNames[type]);
            r.put(" with reserved flags 0x");
            r.put_hex(flags);
            r.put(" (must be 0x");
            r.put_hex(required_flags(type));
            r.put(")");
        }
    }
    return table;
}();

constexpr auto per_type(std::string_view suffix) {
    std::array<ReasonText, 16> table{};
    for (unsigned type = 0; type < 16; ++type) {
        table[type].put(kTypeNames[type]);
        table[type].put(suffix);
    }
    return table;
}

constexpr auto kLength2Reasons = per_type(" with a remaining length other than 2");
constexpr auto kLength0Reasons = per_type(" with a remaining length other than 0");
constexpr auto kZeroIdReasons = per_type(" with packet id 0");
constexpr auto kNoIdReasons = per_type(" ends before its packet id");

constexpr std::string_view kWrongFrame = "decoder given a frame that is not a complete packet of its type";

std::string_view type_reason(const std::array<ReasonText, 16>& table, PacketType type) noexcept {
    return table[static_cast<unsigned>(type) & 0xF].view();
}

// ---- reading --------------------------------------------------------------------------------

// Bounds-checked cursor over a packet body; every read either succeeds whole or consumes nothing.
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> bytes) noexcept : bytes_(bytes) {}

    std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    std::size_t position() const noexcept { return pos_; }
    std::span<const std::uint8_t> rest() const noexcept { return bytes_.subspan(pos_); }

    bool u8(std::uint8_t& v) noexcept {
        if (remaining() < 1) return false;
        v = bytes_[pos_++];
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (remaining() < 2) return false;
        v = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
        pos_ += 2;
        return true;
    }
    // A two-byte length followed by that many bytes (§1.5.3 strings, §3.1.3 binary fields).
    bool binary(std::span<const std::uint8_t>& v) noexcept {
        std::uint16_t len = 0;
        if (remaining() < 2) return false;
        len = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
        if (remaining() - 2 < len) return false;
        v = bytes_.subspan(pos_ + 2, len);
        pos_ += 2 + std::size_t{len};
        return true;
    }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t pos_ = 0;
};

std::string_view as_text(std::span<const std::uint8_t> bytes) noexcept {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

enum class Field : std::uint8_t { ok, truncated, bad_utf8 };

Field read_string(Reader& r, std::string_view& out) noexcept {
    std::span<const std::uint8_t> raw;
    if (!r.binary(raw)) return Field::truncated;
    out = as_text(raw);
    return is_valid_mqtt_utf8(out) ? Field::ok : Field::bad_utf8;
}

bool has_wildcard(std::string_view topic) noexcept {
    return topic.find_first_of("+#") != std::string_view::npos;
}

template <class T>
DecodeResult<T> fail(std::string_view reason) noexcept {
    return {DecodeStatus::malformed, reason, T{}};
}

template <class T>
DecodeResult<T> success(const T& value) noexcept {
    return {DecodeStatus::ok, {}, value};
}

// Checks the first byte as next_frame() does; "" when it is acceptable.
std::string_view check_first_byte(unsigned type, unsigned flags) noexcept {
    if (type == 0 || type == 15) return kTypeNames[type];
    if (type == static_cast<unsigned>(PacketType::publish)) {
        const unsigned qos = (flags >> 1) & 0x3;
        if (qos == 3) return "PUBLISH with QoS 3 (§3.3.1.2)";
        if (qos == 0 && (flags & 0x8) != 0) return "PUBLISH with DUP set on QoS 0 (§3.3.1.1)";
        return {};
    }
    if (flags != required_flags(type)) return kFlagReasons[type][flags].view();
    return {};
}

// Every decoder starts here: a complete frame of the expected type whose body matches its header.
std::string_view check_frame(const Frame& f, PacketType want) noexcept {
    if (f.status != FrameStatus::complete || f.header.type != want ||
        f.body.size() != f.header.remaining_length)
        return kWrongFrame;
    return check_first_byte(static_cast<unsigned>(f.header.type), f.header.flags);
}

// ---- writing --------------------------------------------------------------------------------

constexpr std::size_t kMaxString = 0xFFFF;

void put_u16(Buffer& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

void put_bytes(Buffer& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

void put_bytes(Buffer& out, std::string_view bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

void put_string(Buffer& out, std::string_view s) {
    put_u16(out, static_cast<std::uint16_t>(s.size()));
    put_bytes(out, s);
}

void put_binary(Buffer& out, std::span<const std::uint8_t> b) {
    put_u16(out, static_cast<std::uint16_t>(b.size()));
    put_bytes(out, b);
}

// Fixed header: type/flags byte, then the remaining length 7 bits at a time, low bits first.
void put_fixed_header(Buffer& out, PacketType type, unsigned flags, std::size_t remaining_length) {
    out.push_back(static_cast<std::uint8_t>((static_cast<unsigned>(type) << 4) | (flags & 0xF)));
    do {
        auto byte = static_cast<std::uint8_t>(remaining_length & 0x7F);
        remaining_length >>= 7;
        if (remaining_length > 0) byte |= 0x80;
        out.push_back(byte);
    } while (remaining_length > 0);
}

bool put_publish(Buffer& out, std::string_view topic, std::size_t payload_size, std::uint8_t qos,
                 std::uint16_t packet_id, bool dup, bool retain) {
    if (topic.size() > kMaxString || qos > 2 || (qos > 0 && packet_id == 0) || (qos == 0 && dup))
        return false;
    const std::size_t length = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload_size;
    if (payload_size > kMaxEncodableRemainingLength || length > kMaxEncodableRemainingLength) return false;
    const unsigned flags = (dup ? 0x8u : 0u) | (unsigned{qos} << 1) | (retain ? 0x1u : 0u);
    out.reserve(out.size() + 5 + length);
    put_fixed_header(out, PacketType::publish, flags, length);
    put_string(out, topic);
    if (qos > 0) put_u16(out, packet_id);
    return true;
}

}  // namespace

std::string_view packet_type_name(PacketType type) noexcept {
    return kTypeNames[static_cast<unsigned>(type) & 0xF];
}

bool is_valid_mqtt_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            if (c == 0) return false;  // §1.5.3: U+0000 MUST NOT appear
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;  // continuation byte, overlong lead (C0/C1) or past U+10FFFF (F5..FF)
        }
        if (n - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const unsigned cc = p[i + k];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
        if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
        i += len;
    }
    return true;
}

Frame next_frame(std::span<const std::uint8_t> buf, std::uint32_t max_remaining_length) noexcept {
    Frame f;
    if (buf.empty()) {
        f.reason = "need the fixed header";
        return f;
    }
    const unsigned type = buf[0] >> 4;
    const unsigned flags = buf[0] & 0xF;
    f.header.type = static_cast<PacketType>(type);
    f.header.flags = static_cast<std::uint8_t>(flags);
    if (auto reason = check_first_byte(type, flags); !reason.empty()) {
        f.status = FrameStatus::malformed;
        f.reason = reason;
        return f;
    }

    // §2.2.3: at most 4 length bytes. The value read so far is a lower bound of the claim, so an
    // oversize claim is refused as soon as its length bytes show it.
    std::uint32_t value = 0;
    std::uint32_t multiplier = 1;
    for (std::size_t i = 0;; ++i) {
        if (i == 4) {
            f.status = FrameStatus::malformed;
            f.reason = "remaining length encoded in more than 4 bytes";
            return f;
        }
        if (1 + i >= buf.size()) {
            f.reason = "need the rest of the remaining length";
            return f;
        }
        const std::uint8_t byte = buf[1 + i];
        value += (byte & 0x7Fu) * multiplier;
        if (value > max_remaining_length) {
            f.status = FrameStatus::too_large;
            f.header.remaining_length = value;
            f.reason = "remaining length over the maximum packet size";
            return f;
        }
        if ((byte & 0x80) == 0) {
            f.header.header_bytes = static_cast<std::uint8_t>(i + 2);
            break;
        }
        multiplier *= 128;
    }
    f.header.remaining_length = value;
    if (buf.size() - f.header.header_bytes < value) {
        f.reason = "need the rest of the packet";
        return f;
    }
    f.status = FrameStatus::complete;
    f.body = buf.subspan(f.header.header_bytes, value);
    return f;
}

DecodeResult<ConnectPacket> decode_connect(const Frame& frame) noexcept {
    using R = ConnectPacket;
    if (auto bad = check_frame(frame, PacketType::connect); !bad.empty()) return fail<R>(bad);
    Reader r(frame.body);
    ConnectPacket p;

    std::span<const std::uint8_t> name;
    if (!r.binary(name)) return fail<R>("CONNECT protocol name runs past the end of the packet");
    p.protocol_name = as_text(name);
    if (!r.u8(p.protocol_level)) return fail<R>("CONNECT ends before the protocol level");
    // §3.1.2.2: the server answers CONNACK 0x01 to a level it does not support; MQTT 3.1
    // ("MQIsdp", level 3) and MQTT 5 (level 5) clients get the same answer.
    if (p.protocol_name != "MQTT" || p.protocol_level != 4)
        return {DecodeStatus::unacceptable_protocol, "CONNECT protocol is not MQTT 3.1.1 (\"MQTT\" level 4)", p};

    std::uint8_t flags = 0;
    if (!r.u8(flags)) return fail<R>("CONNECT ends before the connect flags");
    if ((flags & 0x01) != 0) return fail<R>("CONNECT with reserved connect flag set (§3.1.2.3)");
    p.clean_session = (flags & 0x02) != 0;
    p.has_will = (flags & 0x04) != 0;
    p.will.qos = static_cast<std::uint8_t>((flags >> 3) & 0x3);
    p.will.retain = (flags & 0x20) != 0;
    p.has_password = (flags & 0x40) != 0;
    p.has_username = (flags & 0x80) != 0;
    if (!p.has_will && (p.will.qos != 0 || p.will.retain))
        return fail<R>("CONNECT with will QoS or will retain but no will flag (§3.1.2.6)");
    if (p.will.qos == 3) return fail<R>("CONNECT with will QoS 3 (§3.1.2.6)");
    if (p.has_password && !p.has_username)
        return fail<R>("CONNECT with a password flag but no username flag (§3.1.2.9)");
    if (!r.u16(p.keep_alive)) return fail<R>("CONNECT ends before the keep-alive");

    switch (read_string(r, p.client_id)) {
        case Field::ok: break;
        case Field::truncated: return fail<R>("CONNECT client id runs past the end of the packet");
        case Field::bad_utf8: return fail<R>("CONNECT client id is not valid UTF-8 or contains U+0000");
    }
    if (p.has_will) {
        switch (read_string(r, p.will.topic)) {
            case Field::ok: break;
            case Field::truncated: return fail<R>("CONNECT will topic runs past the end of the packet");
            case Field::bad_utf8: return fail<R>("CONNECT will topic is not valid UTF-8 or contains U+0000");
        }
        if (p.will.topic.empty()) return fail<R>("CONNECT with a zero-length will topic");
        if (has_wildcard(p.will.topic)) return fail<R>("CONNECT will topic contains a wildcard ('+' or '#')");
        if (!r.binary(p.will.message)) return fail<R>("CONNECT will message runs past the end of the packet");
    }
    if (p.has_username) {
        switch (read_string(r, p.username)) {
            case Field::ok: break;
            case Field::truncated: return fail<R>("CONNECT username runs past the end of the packet");
            case Field::bad_utf8: return fail<R>("CONNECT username is not valid UTF-8 or contains U+0000");
        }
    }
    if (p.has_password && !r.binary(p.password))
        return fail<R>("CONNECT password runs past the end of the packet");
    if (r.remaining() != 0) return fail<R>("CONNECT with bytes after the fields its flags announce");
    return success(p);
}

DecodeResult<ConnackPacket> decode_connack(const Frame& frame) noexcept {
    using R = ConnackPacket;
    if (auto bad = check_frame(frame, PacketType::connack); !bad.empty()) return fail<R>(bad);
    if (frame.body.size() != 2) return fail<R>(type_reason(kLength2Reasons, PacketType::connack));
    if ((frame.body[0] & 0xFE) != 0) return fail<R>("CONNACK with reserved acknowledge flags set (§3.2.2.1)");
    return success(ConnackPacket{(frame.body[0] & 0x01) != 0, frame.body[1]});
}

DecodeResult<PublishPacket> decode_publish(const Frame& frame) noexcept {
    using R = PublishPacket;
    if (auto bad = check_frame(frame, PacketType::publish); !bad.empty()) return fail<R>(bad);
    PublishPacket p;
    p.dup = (frame.header.flags & 0x8) != 0;
    p.qos = static_cast<std::uint8_t>((frame.header.flags >> 1) & 0x3);
    p.retain = (frame.header.flags & 0x1) != 0;
    Reader r(frame.body);
    switch (read_string(r, p.topic)) {
        case Field::ok: break;
        case Field::truncated: return fail<R>("PUBLISH topic runs past the end of the packet");
        case Field::bad_utf8: return fail<R>("PUBLISH topic is not valid UTF-8 or contains U+0000");
    }
    if (p.topic.empty()) return fail<R>("PUBLISH with a zero-length topic (§4.7.3)");
    if (has_wildcard(p.topic)) return fail<R>("PUBLISH topic contains a wildcard ('+' or '#') (§3.3.2.1)");
    if (p.qos > 0) {
        if (!r.u16(p.packet_id)) return fail<R>(type_reason(kNoIdReasons, PacketType::publish));
        if (p.packet_id == 0) return fail<R>(type_reason(kZeroIdReasons, PacketType::publish));
    }
    p.payload = r.rest();
    return success(p);
}

DecodeResult<PacketIdPacket> decode_packet_id(const Frame& frame) noexcept {
    using R = PacketIdPacket;
    const PacketType t = frame.header.type;
    if (t != PacketType::puback && t != PacketType::pubrec && t != PacketType::pubrel &&
        t != PacketType::pubcomp && t != PacketType::unsuback)
        return fail<R>(kWrongFrame);
    if (auto bad = check_frame(frame, t); !bad.empty()) return fail<R>(bad);
    Reader r(frame.body);
    PacketIdPacket p;
    if (frame.body.size() != 2 || !r.u16(p.packet_id)) return fail<R>(type_reason(kLength2Reasons, t));
    if (p.packet_id == 0) return fail<R>(type_reason(kZeroIdReasons, t));
    return success(p);
}

DecodeResult<SubscribePacket> decode_subscribe(const Frame& frame) noexcept {
    using R = SubscribePacket;
    if (auto bad = check_frame(frame, PacketType::subscribe); !bad.empty()) return fail<R>(bad);
    Reader r(frame.body);
    SubscribePacket p;
    if (!r.u16(p.packet_id)) return fail<R>(type_reason(kNoIdReasons, PacketType::subscribe));
    if (p.packet_id == 0) return fail<R>(type_reason(kZeroIdReasons, PacketType::subscribe));
    const std::size_t start = r.position();
    std::size_t count = 0;
    while (r.remaining() > 0) {
        std::string_view filter;
        switch (read_string(r, filter)) {
            case Field::ok: break;
            case Field::truncated: return fail<R>("SUBSCRIBE topic filter runs past the end of the packet");
            case Field::bad_utf8: return fail<R>("SUBSCRIBE topic filter is not valid UTF-8 or contains U+0000");
        }
        if (filter.empty()) return fail<R>("SUBSCRIBE with a zero-length topic filter (§4.7.3)");
        std::uint8_t qos = 0;
        if (!r.u8(qos)) return fail<R>("SUBSCRIBE topic filter without its requested QoS byte");
        if (qos == 3) return fail<R>("SUBSCRIBE with requested QoS 3 (must be 0, 1 or 2)");
        if (qos > 3) return fail<R>("SUBSCRIBE requested QoS byte with reserved bits set (§3.8.3.1)");
        ++count;
    }
    if (count == 0) return fail<R>("SUBSCRIBE with no topic filters (§3.8.3)");
    p.filters = TopicFilterList(frame.body.subspan(start), count, true);
    return success(p);
}

DecodeResult<SubackPacket> decode_suback(const Frame& frame) noexcept {
    using R = SubackPacket;
    if (auto bad = check_frame(frame, PacketType::suback); !bad.empty()) return fail<R>(bad);
    Reader r(frame.body);
    SubackPacket p;
    if (!r.u16(p.packet_id)) return fail<R>(type_reason(kNoIdReasons, PacketType::suback));
    if (p.packet_id == 0) return fail<R>(type_reason(kZeroIdReasons, PacketType::suback));
    p.return_codes = r.rest();
    if (p.return_codes.empty()) return fail<R>("SUBACK with no return codes");
    for (std::uint8_t code : p.return_codes) {
        if (code > 2 && code != 0x80) return fail<R>("SUBACK with a return code other than 0x00-0x02 or 0x80");
    }
    return success(p);
}

DecodeResult<UnsubscribePacket> decode_unsubscribe(const Frame& frame) noexcept {
    using R = UnsubscribePacket;
    if (auto bad = check_frame(frame, PacketType::unsubscribe); !bad.empty()) return fail<R>(bad);
    Reader r(frame.body);
    UnsubscribePacket p;
    if (!r.u16(p.packet_id)) return fail<R>(type_reason(kNoIdReasons, PacketType::unsubscribe));
    if (p.packet_id == 0) return fail<R>(type_reason(kZeroIdReasons, PacketType::unsubscribe));
    const std::size_t start = r.position();
    std::size_t count = 0;
    while (r.remaining() > 0) {
        std::string_view filter;
        switch (read_string(r, filter)) {
            case Field::ok: break;
            case Field::truncated: return fail<R>("UNSUBSCRIBE topic filter runs past the end of the packet");
            case Field::bad_utf8:
                return fail<R>("UNSUBSCRIBE topic filter is not valid UTF-8 or contains U+0000");
        }
        if (filter.empty()) return fail<R>("UNSUBSCRIBE with a zero-length topic filter (§4.7.3)");
        ++count;
    }
    if (count == 0) return fail<R>("UNSUBSCRIBE with no topic filters (§3.10.3)");
    p.filters = TopicFilterList(frame.body.subspan(start), count, false);
    return success(p);
}

DecodeResult<EmptyPacket> decode_empty(const Frame& frame) noexcept {
    using R = EmptyPacket;
    const PacketType t = frame.header.type;
    if (t != PacketType::pingreq && t != PacketType::pingresp && t != PacketType::disconnect)
        return fail<R>(kWrongFrame);
    if (auto bad = check_frame(frame, t); !bad.empty()) return fail<R>(bad);
    if (!frame.body.empty()) return fail<R>(type_reason(kLength0Reasons, t));
    return success(EmptyPacket{});
}

void TopicFilterList::iterator::load(std::size_t at) noexcept {
    at_ = at;
    if (at_ >= bytes_.size()) {
        at_ = bytes_.size();
        return;
    }
    // The payload was validated by the decoder; the checks only keep a hand-made list in bounds.
    Reader r(bytes_.subspan(at_));
    std::span<const std::uint8_t> raw;
    std::uint8_t qos = 0;
    if (!r.binary(raw) || (with_qos_ && !r.u8(qos))) {
        at_ = bytes_.size();
        return;
    }
    current_ = TopicFilter{as_text(raw), qos};
    next_ = at_ + r.position();
}

// ---- encoders -------------------------------------------------------------------------------

void encode_connack(Buffer& out, bool session_present, std::uint8_t return_code) {
    put_fixed_header(out, PacketType::connack, 0, 2);
    out.push_back(session_present ? 0x01 : 0x00);
    out.push_back(return_code);
}

bool encode_publish(Buffer& out, std::string_view topic, std::span<const std::uint8_t> payload,
                    std::uint8_t qos, std::uint16_t packet_id, bool dup, bool retain) {
    if (!put_publish(out, topic, payload.size(), qos, packet_id, dup, retain)) return false;
    put_bytes(out, payload);
    return true;
}

bool encode_publish(Buffer& out, std::string_view topic, std::string_view payload, std::uint8_t qos,
                    std::uint16_t packet_id, bool dup, bool retain) {
    if (!put_publish(out, topic, payload.size(), qos, packet_id, dup, retain)) return false;
    put_bytes(out, payload);
    return true;
}

void encode_packet_id(Buffer& out, PacketType type, std::uint16_t packet_id) {
    put_fixed_header(out, type, required_flags(static_cast<unsigned>(type)), 2);
    put_u16(out, packet_id);
}

void encode_puback(Buffer& out, std::uint16_t packet_id) { encode_packet_id(out, PacketType::puback, packet_id); }

void encode_unsuback(Buffer& out, std::uint16_t packet_id) {
    encode_packet_id(out, PacketType::unsuback, packet_id);
}

bool encode_suback(Buffer& out, std::uint16_t packet_id, std::span<const std::uint8_t> return_codes) {
    if (packet_id == 0 || return_codes.empty() || return_codes.size() > kMaxEncodableRemainingLength - 2)
        return false;
    put_fixed_header(out, PacketType::suback, 0, 2 + return_codes.size());
    put_u16(out, packet_id);
    put_bytes(out, return_codes);
    return true;
}

void encode_pingreq(Buffer& out) { put_fixed_header(out, PacketType::pingreq, 0, 0); }
void encode_pingresp(Buffer& out) { put_fixed_header(out, PacketType::pingresp, 0, 0); }
void encode_disconnect(Buffer& out) { put_fixed_header(out, PacketType::disconnect, 0, 0); }

bool encode_connect(Buffer& out, const ConnectPacket& p) {
    if (p.protocol_name.size() > kMaxString || p.client_id.size() > kMaxString || p.will.qos > 2 ||
        (p.has_password && !p.has_username))
        return false;
    std::size_t length = 2 + p.protocol_name.size() + 1 + 1 + 2 + 2 + p.client_id.size();
    if (p.has_will) {
        if (p.will.topic.size() > kMaxString || p.will.message.size() > kMaxString) return false;
        length += 2 + p.will.topic.size() + 2 + p.will.message.size();
    }
    if (p.has_username) {
        if (p.username.size() > kMaxString) return false;
        length += 2 + p.username.size();
    }
    if (p.has_password) {
        if (p.password.size() > kMaxString) return false;
        length += 2 + p.password.size();
    }
    unsigned flags = p.clean_session ? 0x02u : 0u;
    if (p.has_will) flags |= 0x04u | (unsigned{p.will.qos} << 3) | (p.will.retain ? 0x20u : 0u);
    if (p.has_password) flags |= 0x40u;
    if (p.has_username) flags |= 0x80u;

    put_fixed_header(out, PacketType::connect, 0, length);
    put_string(out, p.protocol_name);
    out.push_back(p.protocol_level);
    out.push_back(static_cast<std::uint8_t>(flags));
    put_u16(out, p.keep_alive);
    put_string(out, p.client_id);
    if (p.has_will) {
        put_string(out, p.will.topic);
        put_binary(out, p.will.message);
    }
    if (p.has_username) put_string(out, p.username);
    if (p.has_password) put_binary(out, p.password);
    return true;
}

bool encode_subscribe(Buffer& out, std::uint16_t packet_id, std::span<const TopicFilter> filters) {
    if (packet_id == 0 || filters.empty()) return false;
    std::size_t length = 2;
    for (const auto& f : filters) {
        if (f.filter.size() > kMaxString || f.qos > 2) return false;
        length += 2 + f.filter.size() + 1;
    }
    if (length > kMaxEncodableRemainingLength) return false;
    put_fixed_header(out, PacketType::subscribe, required_flags(8), length);
    put_u16(out, packet_id);
    for (const auto& f : filters) {
        put_string(out, f.filter);
        out.push_back(f.qos);
    }
    return true;
}

bool encode_unsubscribe(Buffer& out, std::uint16_t packet_id, std::span<const std::string_view> filters) {
    if (packet_id == 0 || filters.empty()) return false;
    std::size_t length = 2;
    for (const auto& f : filters) {
        if (f.size() > kMaxString) return false;
        length += 2 + f.size();
    }
    if (length > kMaxEncodableRemainingLength) return false;
    put_fixed_header(out, PacketType::unsubscribe, required_flags(10), length);
    put_u16(out, packet_id);
    for (const auto& f : filters) put_string(out, f);
    return true;
}

}  // namespace hubgate::mqtt
