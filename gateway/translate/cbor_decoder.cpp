// The `cbor` decoder: one CBOR data item (RFC 8949) converted to JSON as §6.1 says, through
// libcbor's streaming decoder (libcbor does the wire format; this file builds the JSON). The SenML
// decoder reuses the conversion with SenML's integer labels (RFC 8428 §6).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <cbor.h>
#include <nlohmann/json.hpp>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

namespace {

using nlohmann::json;

// RFC 8949 §3.4.5.2: tags 21-23 say how byte strings inside the tagged item become text.
enum class ByteEncoding : std::uint8_t { base64url, base64, base16 };

constexpr std::uint64_t tag_positive_bignum = 2;
constexpr std::uint64_t tag_negative_bignum = 3;
constexpr std::uint64_t tag_decimal_fraction = 4;
constexpr std::uint64_t tag_expect_base64url = 21;
constexpr std::uint64_t tag_expect_base64 = 22;
constexpr std::uint64_t tag_expect_base16 = 23;

enum class ItemType : std::uint8_t { bytes, text, other };

constexpr std::size_t max_key_text = 256;

// RFC 8428 Table 4; the table is conclusive (no other integer label will ever be defined).
const char* senml_label(std::int64_t key) noexcept {
    switch (key) {
        case -1: return "bver";
        case -2: return "bn";
        case -3: return "bt";
        case -4: return "bu";
        case -5: return "bv";
        case -6: return "bs";
        case 0: return "n";
        case 1: return "u";
        case 2: return "v";
        case 3: return "vs";
        case 4: return "vb";
        case 5: return "s";
        case 6: return "t";
        case 7: return "ut";
        case 8: return "vd";
        default: return nullptr;
    }
}

bool senml_text_label(const std::string& label) noexcept {
    return label == "bn" || label == "bu" || label == "n" || label == "u" || label == "vs";
}

struct Frame {
    enum class Kind : std::uint8_t { array, map, bytes, text };
    Kind kind = Kind::array;
    bool indefinite = false;
    bool have_key = false;
    bool drop_entry = false;  // SenML: an integer label RFC 8428 does not define is ignored
    ByteEncoding encoding = ByteEncoding::base64url;
    std::uint64_t remaining = 0;  // definite containers: items still to come (two per map entry)
    std::vector<std::uint64_t> tags;  // the tags on this container, outermost first
    json value;
    std::string chunks;  // indefinite-length strings
    std::string key;
};

// Builds the JSON value from libcbor's callbacks. Every callback checks `failed` first: libcbor
// keeps calling while this object has already decided the input is bad.
class Builder {
public:
    Builder(bool senml, std::size_t max_depth) : senml_(senml), max_depth_(max_depth) {}

    bool failed() const noexcept { return !error_.empty(); }
    bool done() const noexcept { return done_; }
    const std::string& error() const noexcept { return error_; }
    json take() { return std::move(root_); }
    void at(std::size_t offset) noexcept { offset_ = offset; }

    void fail(std::string what) {
        if (error_.empty()) error_ = std::move(what) + " at byte " + std::to_string(offset_);
    }

    // --- scalars ---
    void unsigned_int(std::uint64_t v) {
        if (!scalar_allowed()) return;
        take_tags();
        emit(json(v), ItemType::other);
    }

    void negative_int(std::uint64_t n) {  // the value is -1 - n
        if (!scalar_allowed()) return;
        take_tags();
        if (n <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            emit(json(-1 - static_cast<std::int64_t>(n)), ItemType::other);
        else  // below -2^63: nlohmann has no integer for it, a double is the nearest JSON number
            emit(json(-1.0 - static_cast<double>(n)), ItemType::other);
    }

    void byte_string(std::string_view bytes) {
        if (in_string_frame(Frame::Kind::bytes)) {
            stack_.back().chunks.append(bytes);
            return;
        }
        if (!scalar_allowed()) return;
        emit(json(render_bytes(bytes, take_tags())), ItemType::bytes);
    }

    void text_string(std::string_view text) {
        if (invalid_utf8_at(text)) {
            fail("invalid UTF-8 in a text string");
            return;
        }
        if (in_string_frame(Frame::Kind::text)) {
            stack_.back().chunks.append(text);
            return;
        }
        if (!scalar_allowed()) return;
        take_tags();
        emit(json(std::string(text)), ItemType::text);
    }

    void boolean(bool b) {
        if (!scalar_allowed()) return;
        take_tags();
        emit(json(b), ItemType::other);
    }

    // null, undefined and every other simple value: RFC 8949 §6.1's substitute value, null.
    void null() {
        if (!scalar_allowed()) return;
        take_tags();
        emit(json(nullptr), ItemType::other);
    }

    // Half and single precision become the double of exactly the same value (RFC 8428 §6: an
    // encoder picks a shorter float only where it loses nothing, so no rounding is undone here).
    void narrow_float(float f) { double_float(static_cast<double>(f)); }

    void double_float(double d) {
        if (!scalar_allowed()) return;
        take_tags();
        emit(std::isfinite(d) ? json(d) : json(nullptr), ItemType::other);
    }

    void tag(std::uint64_t t) {
        if (failed()) return;
        if (string_frame_open()) return fail("a tag inside an indefinite-length string");
        if (depth() >= max_depth_) return fail("CBOR nested deeper than " + std::to_string(max_depth_));
        pending_tags_.push_back(t);
    }

    // --- containers ---
    void start(Frame::Kind kind, bool indefinite, std::uint64_t size) {
        if (failed()) return;
        if (string_frame_open()) return fail("a chunk of another type inside an indefinite-length string");
        if (done_) return fail("trailing item");
        if (depth() >= max_depth_) return fail("CBOR nested deeper than " + std::to_string(max_depth_));
        Frame f;
        f.kind = kind;
        f.indefinite = indefinite;
        f.tags = take_tags();
        f.encoding = stack_.empty() ? ByteEncoding::base64url : stack_.back().encoding;
        for (auto it = f.tags.rbegin(); it != f.tags.rend(); ++it) {
            if (auto enc = hint(*it)) {
                f.encoding = *enc;
                break;
            }
        }
        if (kind == Frame::Kind::array) {
            f.value = json::array();
            f.remaining = size;
        } else if (kind == Frame::Kind::map) {
            f.value = json::object();
            // size pairs, two items each; a size above 2^63 cannot be met by any input anyway
            f.remaining = size > std::numeric_limits<std::uint64_t>::max() / 2 ? std::numeric_limits<std::uint64_t>::max()
                                                                              : size * 2;
        }
        stack_.push_back(std::move(f));
        if (!indefinite && stack_.back().remaining == 0) close();
    }

    void indef_break() {
        if (failed()) return;
        if (stack_.empty() || !stack_.back().indefinite) return fail("a break outside an indefinite-length item");
        if (!pending_tags_.empty()) return fail("a tag without content");
        Frame& f = stack_.back();
        if (f.kind == Frame::Kind::map && f.have_key) return fail("a map key without a value");
        close();
    }

private:
    std::size_t depth() const noexcept { return stack_.size() + pending_tags_.size(); }

    bool string_frame_open() const noexcept {
        return !stack_.empty() && (stack_.back().kind == Frame::Kind::bytes || stack_.back().kind == Frame::Kind::text);
    }

    // Inside an indefinite-length string, only definite chunks of the same major type may follow
    // (RFC 8949 §3.2.3).
    bool in_string_frame(Frame::Kind kind) {
        if (!string_frame_open()) return false;
        if (stack_.back().kind != kind) {
            fail("a chunk of another type inside an indefinite-length string");
            return false;
        }
        return !failed();
    }

    bool scalar_allowed() {
        if (failed()) return false;
        if (string_frame_open()) {
            fail("a chunk of another type inside an indefinite-length string");
            return false;
        }
        if (done_) {
            fail("trailing item");
            return false;
        }
        return true;
    }

    std::vector<std::uint64_t> take_tags() {
        std::vector<std::uint64_t> tags;
        tags.swap(pending_tags_);
        return tags;
    }

    static std::optional<ByteEncoding> hint(std::uint64_t tag) noexcept {
        if (tag == tag_expect_base64url) return ByteEncoding::base64url;
        if (tag == tag_expect_base64) return ByteEncoding::base64;
        if (tag == tag_expect_base16) return ByteEncoding::base16;
        return std::nullopt;
    }

    std::string render_bytes(std::string_view bytes, const std::vector<std::uint64_t>& tags) const {
        ByteEncoding enc = stack_.empty() ? ByteEncoding::base64url : stack_.back().encoding;
        std::string out;
        // The innermost tag that says something about byte strings decides (§6.1: bignums as
        // base64url, "~" before a negative one; §3.4.5.2: tags 21-23).
        for (auto it = tags.rbegin(); it != tags.rend(); ++it) {
            if (*it == tag_positive_bignum || *it == tag_negative_bignum) {
                if (*it == tag_negative_bignum) out.push_back('~');
                enc = ByteEncoding::base64url;
                break;
            }
            if (auto h = hint(*it)) {
                enc = *h;
                break;
            }
        }
        switch (enc) {
            case ByteEncoding::base64url: append_base64url(out, bytes); break;
            case ByteEncoding::base64: append_base64(out, bytes); break;
            case ByteEncoding::base16: append_base16(out, bytes); break;
        }
        return out;
    }

    // A finished container or indefinite string becomes an item of its parent.
    void close() {
        Frame f = std::move(stack_.back());
        stack_.pop_back();
        switch (f.kind) {
            case Frame::Kind::bytes: emit(json(render_bytes(f.chunks, f.tags)), ItemType::bytes); return;
            case Frame::Kind::text: emit(json(std::move(f.chunks)), ItemType::text); return;
            case Frame::Kind::array:
                if (senml_ && !f.tags.empty() && f.tags.back() == tag_decimal_fraction) {
                    emit(decimal_fraction(f.value), ItemType::other);
                    return;
                }
                [[fallthrough]];
            case Frame::Kind::map: emit(std::move(f.value), ItemType::other); return;
        }
    }

    // RFC 8428 §6 allows decimal fractions (tag 4, [exponent, mantissa]) for SenML numbers.
    json decimal_fraction(const json& a) {
        if (a.size() != 2 || !a[0].is_number_integer() || !a[1].is_number_integer()) {
            fail("a decimal fraction that is not [exponent, mantissa]");
            return nullptr;
        }
        const std::string text = a[1].dump() + "e" + a[0].dump();
        const double d = std::strtod(text.c_str(), nullptr);
        return std::isfinite(d) ? json(d) : json(nullptr);
    }

    void emit(json v, ItemType type) {
        if (failed()) return;
        if (stack_.empty()) {
            root_ = std::move(v);
            done_ = true;
            return;
        }
        Frame& f = stack_.back();
        if (f.kind == Frame::Kind::array) {
            f.value.push_back(std::move(v));
        } else if (!f.have_key) {
            f.drop_entry = false;
            if (v.is_string()) {
                f.key = v.get<std::string>();  // a text key, or a byte-string key as its base64url
            } else if (senml_ && stack_.size() == 2 && v.is_number_integer()) {
                const char* label = senml_label(v.get<std::int64_t>());
                f.drop_entry = label == nullptr;
                f.key = label ? label : "";
            } else {
                // §6.1: a converter may turn other keys into their JSON text. Bounded: a map used as
                // a key of a map used as a key... would double its escaping at every level.
                f.key = v.dump();
                if (f.key.size() > max_key_text) return fail("a map key longer than 256 bytes as JSON text");
            }
            f.have_key = true;
            if (f.drop_entry) f.key.clear();
        } else {
            f.have_key = false;
            if (senml_ && stack_.size() == 2 && !f.drop_entry) {
                if (f.key == "vd" && type != ItemType::bytes) return fail("SenML \"vd\" that is not a byte string");
                if (type == ItemType::bytes && senml_text_label(f.key))
                    return fail("SenML \"" + f.key + "\" that is a byte string");
            }
            if (!f.drop_entry) {
                // RFC 8949 §5.6: a map with duplicate keys is not valid; refusing it beats
                // silently keeping one of the two values.
                if (f.value.contains(f.key)) return fail("duplicate map key \"" + f.key + "\"");
                f.value[f.key] = std::move(v);
            }
        }
        if (!f.indefinite && --f.remaining == 0) close();
    }

    bool senml_;
    std::size_t max_depth_;
    std::size_t offset_ = 0;
    bool done_ = false;
    std::vector<Frame> stack_;
    std::vector<std::uint64_t> pending_tags_;
    json root_;
    std::string error_;
};

Builder& B(void* ctx) { return *static_cast<Builder*>(ctx); }

const cbor_callbacks& callbacks() {
    static const cbor_callbacks cb = [] {
        cbor_callbacks c{};
        c.uint8 = [](void* ctx, std::uint8_t v) { B(ctx).unsigned_int(v); };
        c.uint16 = [](void* ctx, std::uint16_t v) { B(ctx).unsigned_int(v); };
        c.uint32 = [](void* ctx, std::uint32_t v) { B(ctx).unsigned_int(v); };
        c.uint64 = [](void* ctx, std::uint64_t v) { B(ctx).unsigned_int(v); };
        c.negint8 = [](void* ctx, std::uint8_t v) { B(ctx).negative_int(v); };
        c.negint16 = [](void* ctx, std::uint16_t v) { B(ctx).negative_int(v); };
        c.negint32 = [](void* ctx, std::uint32_t v) { B(ctx).negative_int(v); };
        c.negint64 = [](void* ctx, std::uint64_t v) { B(ctx).negative_int(v); };
        c.byte_string = [](void* ctx, cbor_data d, std::size_t n) {
            B(ctx).byte_string(std::string_view(reinterpret_cast<const char*>(d), n));
        };
        c.string = [](void* ctx, cbor_data d, std::size_t n) {
            B(ctx).text_string(std::string_view(reinterpret_cast<const char*>(d), n));
        };
        c.byte_string_start = [](void* ctx) { B(ctx).start(Frame::Kind::bytes, true, 0); };
        c.string_start = [](void* ctx) { B(ctx).start(Frame::Kind::text, true, 0); };
        c.array_start = [](void* ctx, std::size_t n) { B(ctx).start(Frame::Kind::array, false, n); };
        c.indef_array_start = [](void* ctx) { B(ctx).start(Frame::Kind::array, true, 0); };
        c.map_start = [](void* ctx, std::size_t n) { B(ctx).start(Frame::Kind::map, false, n); };
        c.indef_map_start = [](void* ctx) { B(ctx).start(Frame::Kind::map, true, 0); };
        c.tag = [](void* ctx, std::uint64_t t) { B(ctx).tag(t); };
        c.float2 = [](void* ctx, float f) { B(ctx).narrow_float(f); };
        c.float4 = [](void* ctx, float f) { B(ctx).narrow_float(f); };
        c.float8 = [](void* ctx, double d) { B(ctx).double_float(d); };
        c.undefined = [](void* ctx) { B(ctx).null(); };
        c.null = [](void* ctx) { B(ctx).null(); };
        c.boolean = [](void* ctx, bool b) { B(ctx).boolean(b); };
        c.indef_break = [](void* ctx) { B(ctx).indef_break(); };
        return c;
    }();
    return cb;
}

}  // namespace

bool cbor_to_json(std::string_view bytes, bool senml, nlohmann::json& out, std::string& error) {
    if (bytes.empty()) {
        error = "empty CBOR payload";
        return false;
    }
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t size = bytes.size();
    Builder builder(senml, max_cbor_depth);
    std::size_t offset = 0;
    while (offset < size && !builder.done() && !builder.failed()) {
        builder.at(offset);
        const unsigned char head = data[offset];
        // libcbor 0.8's streaming decoder refuses these heads as "unassigned", but RFC 8949 §3
        // makes them well-formed: tags 6-20 in the initial byte, simple values 0-19 and, with a
        // following byte of 32 or more, 32-255 (§6.1 turns unknown simple values into null).
        if (head >= 0xC6 && head <= 0xD4) {
            builder.tag(head - 0xC0u);
            offset += 1;
            continue;
        }
        if (head >= 0xE0 && head <= 0xF3) {
            builder.null();
            offset += 1;
            continue;
        }
        if (head == 0xF8) {
            if (offset + 1 >= size) break;
            if (data[offset + 1] < 32) {
                builder.fail("a simple value in two bytes below 32 (not well-formed)");
                break;
            }
            builder.null();
            offset += 2;
            continue;
        }
        const cbor_decoder_result r = cbor_stream_decode(data + offset, size - offset, &callbacks(), &builder);
        if (r.status == CBOR_DECODER_NEDATA) break;
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            builder.fail("invalid CBOR");
            break;
        }
        offset += r.read;
    }
    if (builder.failed()) {
        error = builder.error();
        return false;
    }
    if (!builder.done()) {
        error = "truncated CBOR at byte " + std::to_string(offset);
        return false;
    }
    if (offset < size) {
        error = "trailing bytes after CBOR at byte " + std::to_string(offset);
        return false;
    }
    out = builder.take();
    return true;
}

Decoded decode_cbor(const DecodeInput& in) {
    Decoded d;
    std::string error;
    if (!cbor_to_json(in.bytes, false, d.doc, error)) return failure(DecodeStatus::bad_payload, std::move(error));
    d.body = d.doc.dump();
    d.source_content_type = "application/cbor";
    d.has_doc = in.want_doc;
    if (!in.want_doc) d.doc = nullptr;
    return d;
}

}  // namespace hubgate::translate::detail
