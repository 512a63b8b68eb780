#include "store/record_codec.hpp"

#include <array>
#include <cstdint>

namespace hubgate::store {
namespace {

constexpr std::size_t kSystemCount = 8;

// One table for both directions keeps the bit order of encode and decode in step.
std::array<std::string*, kSystemCount> system_fields(SystemProperties& s) {
    return {&s.message_id,   &s.correlation_id, &s.user_id,
            &s.content_type, &s.content_encoding, &s.creation_time,
            &s.absolute_expiry_time, &s.to};
}
std::array<const std::string*, kSystemCount> system_fields(const SystemProperties& s) {
    return {&s.message_id,   &s.correlation_id, &s.user_id,
            &s.content_type, &s.content_encoding, &s.creation_time,
            &s.absolute_expiry_time, &s.to};
}

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

void put_bytes(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out.append(s);
}

class Cursor {
public:
    explicit Cursor(std::string_view in) : in_(in) {}

    bool byte(unsigned char& b) {
        if (pos_ >= in_.size()) return false;
        b = static_cast<unsigned char>(in_[pos_++]);
        return true;
    }
    bool varint(std::uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            unsigned char b = 0;
            if (!byte(b)) return false;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return shift < 63 || b <= 1;  // no bits beyond 64
        }
        return false;  // more than 10 bytes
    }
    bool bytes(std::string& out) {
        std::uint64_t n = 0;
        if (!varint(n) || n > remaining()) return false;
        out.assign(in_.substr(pos_, n));
        pos_ += n;
        return true;
    }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }
    std::size_t pos() const noexcept { return pos_; }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
};

Error corrupt(const Cursor& c, const char* what) {
    return Error{"corrupt property record at byte " + std::to_string(c.pos()) + ": " + what};
}

}  // namespace

void encode_properties(const SystemProperties& system, const AppProperties& props, std::string& out) {
    out.clear();
    out.push_back(static_cast<char>(kRecordVersion));
    const auto fields = system_fields(system);
    unsigned mask = 0;
    for (std::size_t i = 0; i < kSystemCount; ++i)
        if (!fields[i]->empty()) mask |= 1u << i;
    out.push_back(static_cast<char>(mask));
    for (std::size_t i = 0; i < kSystemCount; ++i)
        if (mask & (1u << i)) put_bytes(out, *fields[i]);
    put_varint(out, props.size());
    for (const auto& p : props) {
        put_bytes(out, p.name);
        out.push_back(p.value ? '\1' : '\0');
        if (p.value) put_bytes(out, *p.value);
    }
}

Status decode_properties(std::string_view blob, SystemProperties& system, AppProperties& props) {
    system = SystemProperties{};
    props.clear();
    Cursor c(blob);
    unsigned char version = 0;
    if (!c.byte(version)) return corrupt(c, "empty");
    if (version != kRecordVersion) return corrupt(c, "unknown version");
    unsigned char mask = 0;
    if (!c.byte(mask)) return corrupt(c, "truncated system property mask");
    const auto fields = system_fields(system);
    for (std::size_t i = 0; i < kSystemCount; ++i)
        if ((mask & (1u << i)) && !c.bytes(*fields[i])) return corrupt(c, "truncated system property");
    std::uint64_t count = 0;
    if (!c.varint(count)) return corrupt(c, "truncated property count");
    // Each property takes at least two bytes (name length + flag): a larger count is a lie, and
    // trusting it would let a corrupt row make us reserve gigabytes.
    if (count > c.remaining() / 2) return corrupt(c, "property count exceeds record");
    props.reserve(count);
    std::string name;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (!c.bytes(name)) return corrupt(c, "truncated property name");
        unsigned char flag = 0;
        if (!c.byte(flag)) return corrupt(c, "truncated property flag");
        if (flag == 0) {
            props.set(std::move(name), std::nullopt);
        } else if (flag == 1) {
            std::string value;
            if (!c.bytes(value)) return corrupt(c, "truncated property value");
            props.set(std::move(name), std::move(value));
        } else {
            return corrupt(c, "bad value flag");
        }
        name.clear();
    }
    if (c.remaining() != 0) return corrupt(c, "trailing bytes");
    return std::nullopt;
}

}  // namespace hubgate::store
