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
    std::array<std::string_view, 4> seg{};
    std::size_t n = 0;
    std::string_view rest = uri_path;
    while (!rest.empty()) {
        if (n == seg.size()) return {};
        seg[n++] = next_segment(rest);
    }
    if (n != 4 || seg[0] != "devices" || seg[2] != "messages" || seg[3] != "events") return {};
    PathMatch m;
    m.device_id = std::string(seg[1]);
    m.kind = is_hub_id(seg[1]) ? PathMatch::Kind::telemetry : PathMatch::Kind::bad_device_id;
    return m;
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

}  // namespace hubgate::coap
