// The `senml` decoder: a SenML Pack (RFC 8428) in JSON or CBOR becomes the JSON array of its
// resolved Records (§4.6), with absolute times and JSON labels, so a hub-side query reads one
// shape whatever the device sent.
//
// What is a decode error (bad_payload) and what is not, where RFC 8428 leaves it to the reader:
// - not an array, an empty array, a record that is not a map/object: error (§11's CDDL, [1* record]);
// - a known label with the wrong type (`v` a string, `vb` a number, `vd` not base64url or, in CBOR,
//   not a byte string), a `bver` that is not a positive integer: error;
// - a version above 10, or records of one pack with different versions: error (§4.4 MUST);
// - a label ending in `_` (must-understand extension): error (§4.4 MUST);
// - a record with more than one of v/vs/vb/vd, or with none and no `s`: error (§4.2 "exactly one
//   Value field MUST appear unless there is a Sum field") — except a record holding base fields
//   only, which sets bases and yields no record;
// - a resolved name (bn + n) empty or outside §4.5.1's characters: error;
// - a sum, value or time that overflows a double: error;
// - duplicate labels in one record (JSON or CBOR): error, rather than one value silently winning;
// - unknown labels: a regular one (no leading `b`) is kept unchanged in the resolved record, an
//   unknown base one is dropped (only its definer could say how it resolves, §4.6); an integer
//   CBOR label outside Table 4 is dropped.
// Resolution (§4.6, §4.5): n = bn + n; u = u, else bu; v = bv + v; s = bs + s only where the record
// has s; t = bt + t, and a result below 2^28 is relative to now, taken as DecodeInput::receive_ms
// (so `t` is always present and absolute, in seconds); bver appears in every record only when the
// version is not 10. Records are then put in chronological order (§4.6), a stable sort by t, so
// records of the same time keep the pack's order. Numbers that a base changed are rewritten
// (an integral result below 2^53 as an integer); untouched numbers keep their JSON value.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

namespace {

using nlohmann::json;

constexpr double relative_time_limit = 268435456.0;  // 2^28, RFC 8428 §4.5.3
constexpr std::uint64_t senml_version = 10;          // the version RFC 8428 defines
constexpr double exact_integer_limit = 9007199254740992.0;  // 2^53

struct SenmlError {
    std::string reason;
};

[[noreturn]] void fail_record(std::size_t index, const std::string& what) {
    throw SenmlError{"SenML record " + std::to_string(index) + ": " + what};
}

// An integral double within 2^53 is written as an integer: 1.320067524e+09 -> 1320067524.
json normalized(double d) {
    if (std::trunc(d) == d && std::fabs(d) < exact_integer_limit) return json(static_cast<std::int64_t>(d));
    return json(d);
}

std::optional<std::int64_t> as_int64(const json& j) noexcept {
    if (j.is_number_unsigned()) {
        const auto u = j.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return static_cast<std::int64_t>(u);
        return std::nullopt;
    }
    if (j.is_number_integer()) return j.get<std::int64_t>();
    return std::nullopt;
}

// base + x, in integers when both are integers and it fits, else in doubles.
json add(const json& base, const json& x, std::size_t index, const char* label) {
    if (base.is_null()) return x;
    const auto a = as_int64(base), b = as_int64(x);
    if (a && b) {
        std::int64_t r = 0;
        if (!__builtin_add_overflow(*a, *b, &r)) return json(r);
    }
    const double r = base.get<double>() + x.get<double>();
    if (!std::isfinite(r)) fail_record(index, std::string("\"") + label + "\" out of range");
    return normalized(r);
}

bool name_char(char c, bool first) noexcept {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
    return !first && (c == '-' || c == ':' || c == '.' || c == '/' || c == '_');
}

// RFC 8428 §4.5.1: [A-Za-z0-9][-:./_A-Za-z0-9]*
bool valid_name(const std::string& name) noexcept {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0)) return false;
    return true;
}

enum class Kind { text, number, boolean, data, version };

struct Label {
    const char* name;
    Kind kind;
    bool base;
};

constexpr Label known_labels[] = {
    {"bn", Kind::text, true},   {"bt", Kind::number, true},  {"bu", Kind::text, true},
    {"bv", Kind::number, true}, {"bs", Kind::number, true},  {"bver", Kind::version, true},
    {"n", Kind::text, false},   {"u", Kind::text, false},    {"v", Kind::number, false},
    {"vs", Kind::text, false},  {"vb", Kind::boolean, false}, {"vd", Kind::data, false},
    {"s", Kind::number, false}, {"t", Kind::number, false},  {"ut", Kind::number, false},
};

const Label* find_label(const std::string& key) noexcept {
    for (const Label& l : known_labels)
        if (key == l.name) return &l;
    return nullptr;
}

void check_type(std::size_t index, const std::string& key, const json& value, Kind kind) {
    switch (kind) {
        case Kind::text:
            if (!value.is_string()) fail_record(index, "\"" + key + "\" must be a string");
            return;
        case Kind::number:
            if (!value.is_number()) fail_record(index, "\"" + key + "\" must be a number");
            return;
        case Kind::boolean:
            if (!value.is_boolean()) fail_record(index, "\"" + key + "\" must be a boolean");
            return;
        case Kind::data:
            if (!value.is_string() || !decode_base64url(value.get_ref<const std::string&>()))
                fail_record(index, "\"vd\" must be base64url");
            return;
        case Kind::version:
            if (!value.is_number_integer() || value.get<std::int64_t>() <= 0)
                fail_record(index, "\"bver\" must be a positive integer");
            return;
    }
}

struct Resolved {
    std::size_t index = 0;  // position in the pack: the stable sort's tie-break
    double time = 0;        // for sorting
    json record;            // the fields, emitted in a fixed order below
    std::vector<std::pair<std::string, json>> extensions;  // unknown regular labels, pack order
};

// Fields in the order RFC 8428's resolved example shows them (§5.1.4), then the rest.
constexpr const char* output_order[] = {"bver", "n", "u", "t", "v", "vs", "vb", "vd", "s", "ut"};

json time_against(std::int64_t receive_ms, const json& relative, std::size_t index) {
    if (const auto rel = as_int64(relative)) {
        std::int64_t ms = 0;
        std::int64_t rel_ms = 0;
        if (!__builtin_mul_overflow(*rel, std::int64_t{1000}, &rel_ms) &&
            !__builtin_add_overflow(receive_ms, rel_ms, &ms)) {
            if (ms % 1000 == 0) return json(ms / 1000);
            return json(static_cast<double>(ms) / 1000.0);
        }
    }
    const double t = static_cast<double>(receive_ms) / 1000.0 + relative.get<double>();
    if (!std::isfinite(t)) fail_record(index, "\"t\" out of range");
    return normalized(t);
}

std::vector<Resolved> resolve(const json& pack, std::int64_t receive_ms) {
    if (!pack.is_array()) throw SenmlError{"a SenML pack must be an array"};
    if (pack.empty()) throw SenmlError{"an empty SenML pack"};

    std::string bn;
    json bt, bv, bs;  // null while absent
    std::optional<std::string> bu;
    std::optional<std::uint64_t> version;  // of the first record; all must match (§4.4)
    std::uint64_t bver = senml_version;

    std::vector<Resolved> out;
    out.reserve(pack.size());
    for (std::size_t i = 0; i < pack.size(); ++i) {
        const json& rec = pack[i];
        if (!rec.is_object()) fail_record(i, "not an object");

        bool only_base = true;
        int values = 0;
        for (const auto& [key, value] : rec.items()) {
            if (!key.empty() && key.back() == '_') fail_record(i, "unsupported must-understand label \"" + key + "\"");
            const Label* label = find_label(key);
            if (label) check_type(i, key, value, label->kind);
            const bool base = label ? label->base : (!key.empty() && key.front() == 'b');
            only_base = only_base && base;
            if (key == "v" || key == "vs" || key == "vb" || key == "vd") ++values;
        }

        // Base fields apply to this record and the ones after it (§4).
        if (auto it = rec.find("bn"); it != rec.end()) bn = it->get<std::string>();
        if (auto it = rec.find("bt"); it != rec.end()) bt = *it;
        if (auto it = rec.find("bu"); it != rec.end()) bu = it->get<std::string>();
        if (auto it = rec.find("bv"); it != rec.end()) bv = *it;
        if (auto it = rec.find("bs"); it != rec.end()) bs = *it;
        if (auto it = rec.find("bver"); it != rec.end()) bver = it->get<std::uint64_t>();
        if (bver > senml_version)
            fail_record(i, "SenML version " + std::to_string(bver) + " is newer than " + std::to_string(senml_version));
        if (!version) version = bver;
        if (*version != bver) fail_record(i, "version " + std::to_string(bver) + " differs from the pack's " +
                                                 std::to_string(*version));

        if (only_base) continue;  // bases only: nothing measured
        const auto s_it = rec.find("s");
        if (values > 1) fail_record(i, "more than one value field");
        if (values == 0 && s_it == rec.end()) fail_record(i, "no value field and no sum");

        Resolved r;
        r.index = i;
        r.record = json::object();
        std::string name = bn;
        if (auto it = rec.find("n"); it != rec.end()) name += it->get_ref<const std::string&>();
        if (name.empty()) fail_record(i, "no name");
        if (!valid_name(name)) fail_record(i, "name \"" + name + "\" has characters RFC 8428 §4.5.1 does not allow");
        r.record["n"] = std::move(name);

        if (auto it = rec.find("u"); it != rec.end()) r.record["u"] = *it;
        else if (bu) r.record["u"] = *bu;

        json t = json(0);
        if (auto it = rec.find("t"); it != rec.end()) t = *it;
        t = add(bt, t, i, "t");
        if (t.get<double>() < relative_time_limit) t = time_against(receive_ms, t, i);
        r.time = t.get<double>();
        r.record["t"] = std::move(t);

        if (auto it = rec.find("v"); it != rec.end()) r.record["v"] = add(bv, *it, i, "v");
        if (auto it = rec.find("vs"); it != rec.end()) r.record["vs"] = *it;
        if (auto it = rec.find("vb"); it != rec.end()) r.record["vb"] = *it;
        if (auto it = rec.find("vd"); it != rec.end()) {
            std::string vd = it->get<std::string>();
            while (!vd.empty() && vd.back() == '=') vd.pop_back();  // RFC 8428: padding omitted
            r.record["vd"] = std::move(vd);
        }
        if (s_it != rec.end()) r.record["s"] = add(bs, *s_it, i, "s");
        if (auto it = rec.find("ut"); it != rec.end()) r.record["ut"] = *it;
        if (bver != senml_version) r.record["bver"] = bver;

        for (const auto& [key, value] : rec.items()) {
            if (find_label(key) || key.empty() || key.front() == 'b') continue;
            r.extensions.emplace_back(key, value);
        }
        out.push_back(std::move(r));
    }
    std::stable_sort(out.begin(), out.end(), [](const Resolved& a, const Resolved& b) { return a.time < b.time; });
    return out;
}

void append_member(std::string& body, bool& first, const std::string& key, const json& value) {
    body.push_back(first ? '{' : ',');
    first = false;
    body.append(json(key).dump()).push_back(':');
    body.append(value.dump());
}

// JSON text of a SenML pack; duplicate keys anywhere are refused (nlohmann would keep the last).
json parse_json_pack(std::string_view text) {
    // The json decoder's scanner first: nlohmann alone would take "[...]\0junk" (a NUL ends its input).
    if (!check_json(text).ok) throw SenmlError{json_error_reason(text, 0)};
    std::vector<std::set<std::string>> keys;
    std::string duplicate;
    auto cb = [&](int, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start: keys.emplace_back(); break;
            case json::parse_event_t::object_end:
                if (!keys.empty()) keys.pop_back();
                break;
            case json::parse_event_t::key:
                if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
                    duplicate = parsed.get<std::string>();
                break;
            default: break;
        }
        return true;
    };
    json pack = json::parse(text.begin(), text.end(), cb, false);
    if (pack.is_discarded()) throw SenmlError{json_error_reason(text, 0)};
    if (!duplicate.empty()) throw SenmlError{"duplicate JSON key \"" + duplicate + "\""};
    return pack;
}

}  // namespace

Decoded decode_senml(const DecodeInput& in, SenmlEncoding encoding, bool sensml) {
    std::string_view bytes = in.bytes;
    if (encoding != SenmlEncoding::cbor && bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);  // a BOM
    if (encoding == SenmlEncoding::sniff) {
        std::size_t i = 0;
        while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r')) ++i;
        encoding = i < bytes.size() && bytes[i] == '[' ? SenmlEncoding::json : SenmlEncoding::cbor;
    }
    const bool is_json = encoding == SenmlEncoding::json;
    try {
        json pack;
        if (is_json) {
            pack = parse_json_pack(bytes);
        } else {
            std::string error;
            if (!cbor_to_json(bytes, true, pack, error)) throw SenmlError{"SenML CBOR: " + error};
        }
        std::vector<Resolved> records = resolve(pack, in.receive_ms);

        Decoded d;
        d.source_content_type = is_json ? (sensml ? "application/sensml+json" : "application/senml+json")
                                        : (sensml ? "application/sensml+cbor" : "application/senml+cbor");
        d.body.reserve(records.size() * 96);
        d.body.push_back('[');
        if (in.want_doc) d.doc = json::array();
        for (std::size_t k = 0; k < records.size(); ++k) {
            Resolved& r = records[k];
            if (k) d.body.push_back(',');
            bool first = true;
            for (const char* key : output_order)
                if (auto it = r.record.find(key); it != r.record.end()) append_member(d.body, first, key, *it);
            for (const auto& [key, value] : r.extensions) append_member(d.body, first, key, value);
            d.body.push_back('}');
            if (in.want_doc) {
                for (auto& [key, value] : r.extensions) r.record[key] = std::move(value);
                d.doc.push_back(std::move(r.record));
            }
        }
        d.body.push_back(']');
        d.has_doc = in.want_doc;
        return d;
    } catch (const SenmlError& e) {
        return failure(DecodeStatus::bad_payload, e.reason);
    }
}

}  // namespace hubgate::translate::detail
