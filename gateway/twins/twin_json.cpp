#include "gateway/twins/twin_json.hpp"

#include <nlohmann/json.hpp>

namespace hubgate::twins {
namespace {

using json = nlohmann::json;

// Depth of `v` counting objects only, as IoT Hub counts twin property levels.
int depth(const json& v) {
    if (!v.is_object()) return 0;
    int d = 0;
    for (const auto& [k, child] : v.items()) d = std::max(d, depth(child));
    return d + 1;
}

std::optional<std::string> reserved_key(const json& v) {
    if (!v.is_object()) return std::nullopt;
    for (const auto& [k, child] : v.items()) {
        if (!k.empty() && k[0] == '$') return k;
        if (auto bad = reserved_key(child)) return bad;
    }
    return std::nullopt;
}

// RFC 7386 §2.
void merge(json& target, const json& patch) {
    if (!patch.is_object()) {
        target = patch;
        return;
    }
    if (!target.is_object()) target = json::object();
    for (const auto& [k, v] : patch.items()) {
        if (v.is_null()) target.erase(k);
        else merge(target[k], v);
    }
}

// RFC 7386 backwards: the patch that makes `from` into `to`.
json diff(const json& from, const json& to) {
    json out = json::object();
    for (const auto& [k, v] : from.items())
        if (!to.contains(k)) out[k] = nullptr;
    for (const auto& [k, v] : to.items()) {
        const auto f = from.find(k);
        if (f == from.end()) {
            out[k] = v;
        } else if (f->is_object() && v.is_object()) {
            json d = diff(*f, v);
            if (!d.empty()) out[k] = std::move(d);
        } else if (*f != v) {
            out[k] = v;
        }
    }
    return out;
}

}  // namespace

std::string diff_patch(std::string_view from, std::string_view to) {
    json f = json::parse(from, nullptr, false);
    if (f.is_discarded() || !f.is_object()) f = json::object();
    json t = json::parse(to, nullptr, false);
    if (t.is_discarded() || !t.is_object()) t = json::object();
    return diff(f, t).dump();
}

int nesting(std::string_view document) {
    const json d = json::parse(document, nullptr, false);
    return d.is_discarded() ? -1 : depth(d);
}

Result<std::string> merge_patch(std::string_view document, std::string_view patch) {
    json p = json::parse(patch, nullptr, false);
    if (p.is_discarded()) return Error{"the patch is not JSON"};
    if (!p.is_object()) return Error{"the patch must be a JSON object"};
    if (auto bad = reserved_key(p)) return Error{"property name '" + bad->substr(0, 64) + "' starts with '$' (reserved)"};
    json d = json::parse(document, nullptr, false);
    if (d.is_discarded() || !d.is_object()) d = json::object();
    merge(d, p);
    if (depth(d) > kMaxDepth)
        return Error{"properties nest deeper than " + std::to_string(kMaxDepth) + " levels"};
    return d.dump();
}

std::string twin_document(std::string_view desired, std::int64_t desired_version, std::string_view reported,
                          std::int64_t reported_version) {
    json d = json::parse(desired, nullptr, false);
    if (d.is_discarded() || !d.is_object()) d = json::object();
    json r = json::parse(reported, nullptr, false);
    if (r.is_discarded() || !r.is_object()) r = json::object();
    d["$version"] = desired_version;
    r["$version"] = reported_version;
    json out = json::object();
    out["desired"] = std::move(d);
    out["reported"] = std::move(r);
    return out.dump();
}

std::string with_version(std::string_view patch, std::int64_t version) {
    json p = json::parse(patch, nullptr, false);
    if (p.is_discarded() || !p.is_object()) p = json::object();
    p["$version"] = version;
    return p.dump();
}

std::string error_body(int error_code, std::string_view message) {
    json out = json::object();
    out["errorCode"] = error_code;
    out["message"] = std::string(message);
    return out.dump();
}

std::string encode_key(std::string_view device_id) {
    std::string out;
    out.reserve(device_id.size());
    for (const char c : device_id) {
        switch (c) {
            case '%': out += "%25"; break;
            case '.': out += "%2E"; break;
            case '$': out += "%24"; break;
            case ' ': out += "%20"; break;
            default: out += c;
        }
    }
    return out;
}

std::optional<std::string> decode_key(std::string_view key) {
    std::string out;
    out.reserve(key.size());
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (key[i] != '%') {
            out += key[i];
            continue;
        }
        if (i + 2 >= key.size()) return std::nullopt;
        const int hi = hex(key[i + 1]);
        const int lo = hex(key[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

}  // namespace hubgate::twins
