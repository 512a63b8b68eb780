#include "adapters/coap/coap_paths.hpp"

#include <array>
#include <utility>

#include "gateway/model/property_bag.hpp"
#include "gateway/model/validation.hpp"

namespace hubgate::coap {

namespace {

// Splits off the next '/'-separated segment.
std::string_view next_segment(std::string_view& rest) {
    const auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return seg;
}

}  // namespace

PathMatch match_path(std::string_view uri_path) {
    if (!uri_path.empty() && uri_path.front() == '/') uri_path.remove_prefix(1);
    if (!uri_path.empty() && uri_path.back() == '/') uri_path.remove_suffix(1);
    std::array<std::string_view, 6> seg{};
    std::size_t n = 0;
    std::string_view rest = uri_path;
    while (!rest.empty()) {
        if (n == seg.size()) return {};
        seg[n++] = next_segment(rest);
    }
    if (n < 3 || seg[0] != "devices") return {};
    PathMatch m;
    if (seg[2] == "twin") {
        if (n == 3) m.kind = PathMatch::Kind::twin;
        else if (n == 4 && seg[3] == "reported") m.kind = PathMatch::Kind::twin_reported;
        else if (n == 4 && seg[3] == "desired") m.kind = PathMatch::Kind::twin_desired;
        else return {};
    } else if (n < 4 || seg[2] != "messages") {
        return {};
    } else if (n == 4 && seg[3] == "events") {
        m.kind = PathMatch::Kind::telemetry;
    } else if (seg[3] == "devicebound" && n == 4) {
        m.kind = PathMatch::Kind::devicebound;
    } else if (seg[3] == "devicebound" && (n == 5 || (n == 6 && seg[5] == "abandon"))) {
        auto lock = lock_from_hex(seg[4]);
        if (!lock) return {};
        m.lock = std::move(*lock);
        m.kind = n == 5 ? PathMatch::Kind::c2d_lock : PathMatch::Kind::c2d_abandon;
    } else {
        return {};
    }
    m.device_id = std::string(seg[1]);
    if (!is_hub_id(seg[1])) m.kind = PathMatch::Kind::bad_device_id;
    return m;
}

std::string lock_to_hex(std::string_view lock) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : lock) {
        out += kDigits[c >> 4];
        out += kDigits[c & 0xf];
    }
    return out;
}

std::optional<std::string> lock_from_hex(std::string_view hex) {
    if (hex.empty() || hex.size() > 16 || hex.size() % 2 != 0) return std::nullopt;
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
    }
    return out;
}

std::string content_type_for_format(std::uint32_t content_format) {
    switch (content_format) {
        case 0: return "text/plain;charset=utf-8";
        case 42: return "application/octet-stream";
        case 50: return "application/json";
        case 60: return "application/cbor";
        case 110: return "application/senml+json";
        case 112: return "application/senml+cbor";
        default: return "application/vnd.coap.cf." + std::to_string(content_format);
    }
}

BuildResult build_telemetry(const TelemetryRequest& req, MessageIdGenerator& ids) {
    BuildResult r;
    HubMessage m;
    m.body.assign(req.body);
    m.device_id.assign(req.device_id);
    m.module_id.assign(req.module_id);
    if (auto err = apply_property_bag(req.query, m)) {
        r.refusal = Refusal{4, 0, "bad_properties", "bad query properties: " + err->reason};
        return r;
    }
    if (req.content_format && m.system.content_type.empty())
        m.system.content_type = content_type_for_format(*req.content_format);
    if (auto err = normalize_message(m, ids)) {
        if (check_size(m))
            r.refusal = Refusal{4, 13, "oversize", err->reason};
        else
            r.refusal = Refusal{4, 0, "invalid_message", err->reason};
        return r;
    }
    r.message = std::move(m);
    return r;
}

std::optional<Refusal> check_twin_patch_format(std::optional<std::uint32_t> content_format) {
    if (!content_format || *content_format == 50 || *content_format == 52) return std::nullopt;
    return Refusal{4, 15, "bad_format",
                   "a twin patch is JSON: Content-Format 50 (application/json) or 52 "
                   "(application/merge-patch+json), not " +
                       std::to_string(*content_format)};
}

}  // namespace hubgate::coap
