#include "gateway/twins/gateway_twin_plan.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "gateway/twins/twin_json.hpp"

namespace hubgate::twins {

using json = nlohmann::json;

std::size_t section_bytes(std::string_view device_id, std::size_t document_bytes) {
    return encode_key(device_id).size() + 4 + document_bytes;  // quotes, colon, comma
}

ReportedPlan plan_reported(const store::ReportedBacklog& backlog, std::size_t max_bytes) {
    ReportedPlan plan;
    std::unordered_map<std::string, std::size_t> acked;
    std::size_t doc = kEmptyDevicesBytes;
    for (const auto& [id, n] : backlog.sent_bytes) {
        acked[id] = n;
        doc += section_bytes(id, n);
    }
    json devices = json::object();
    std::size_t patch_bytes = kEmptyDevicesBytes;
    for (const auto& p : backlog.pending) {
        const std::string change = diff_patch(p.sent, p.reported);
        if (change == "{}") {  // changed and changed back: nothing for the hub
            plan.sent.push_back({p.id, p.reported_version, p.reported, p.sent});
            continue;
        }
        // {"devices":{"<D>":{...}}}: two levels above the device's own.
        if (const int d = nesting(p.reported) + 2; d > kMaxDepth) {
            plan.oversize.push_back({p.id, p.reported_version, Oversize::Limit::depth, 0, d});
            continue;
        }
        const auto was = acked.find(p.id);
        const std::size_t before = was == acked.end() ? 0 : section_bytes(p.id, was->second);
        const std::size_t after = section_bytes(p.id, p.reported.size());
        const std::size_t next_doc = doc - before + after;
        if (after > before && next_doc > max_bytes) {
            plan.oversize.push_back({p.id, p.reported_version, Oversize::Limit::bytes, next_doc, 0});
            continue;
        }
        const std::size_t entry = section_bytes(p.id, change.size());
        if (!devices.empty() && patch_bytes + entry > max_bytes) {
            plan.more = true;
            break;
        }
        devices[encode_key(p.id)] = json::parse(change);
        patch_bytes += entry;
        doc = next_doc;
        plan.sent.push_back({p.id, p.reported_version, p.reported, p.sent});
    }
    if (!devices.empty()) plan.patch = json{{"devices", std::move(devices)}}.dump();
    plan.document_bytes = doc;
    return plan;
}

Result<GatewayDesired> read_gateway_twin(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return Error{"the twin document is not a JSON object"};
    const auto desired = doc.find("desired");
    if (desired == doc.end() || !desired->is_object()) return Error{"the twin document has no desired object"};
    GatewayDesired out;
    if (const auto v = desired->find("$version"); v != desired->end() && v->is_number_integer())
        out.version = v->get<std::int64_t>();
    const auto devices = desired->find("devices");
    if (devices == desired->end() || devices->is_null()) return out;
    if (!devices->is_object()) return Error{"desired.devices is not an object"};
    for (const auto& [key, section] : devices->items()) {
        const auto id = decode_key(key);
        if (!id || id->empty()) continue;  // not a device's key: nobody's to change or clear
        if (!section.is_object()) {
            // null: the device has no desired properties (as a patch's null clears them).
            if (section.is_null()) out.devices.emplace_back(*id, "{}");
            else out.unusable.push_back(*id);
            continue;
        }
        // As a patch onto nothing: the same refusals ($ names, depth) as a desired patch.
        auto normal = merge_patch("{}", section.dump());
        if (!normal) {
            out.unusable.push_back(*id);
            continue;
        }
        out.devices.emplace_back(*id, std::move(normal.value()));
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> desired_changes(
    const GatewayDesired& hub, const std::vector<std::pair<std::string, std::string>>& local) {
    std::unordered_map<std::string, const std::string*> mine;
    for (const auto& [id, d] : local) mine[id] = &d;
    std::set<std::string> named(hub.unusable.begin(), hub.unusable.end());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [id, d] : hub.devices) {
        named.insert(id);
        const auto m = mine.find(id);
        std::string change = diff_patch(m == mine.end() ? std::string_view("{}") : std::string_view(*m->second), d);
        if (change != "{}") out.emplace_back(id, std::move(change));
    }
    for (const auto& [id, d] : local) {
        if (named.contains(id)) continue;
        std::string change = diff_patch(d, "{}");
        if (change != "{}") out.emplace_back(id, std::move(change));
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> read_gateway_reported(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
    const auto reported = doc.find("reported");
    if (reported == doc.end() || !reported->is_object()) return std::nullopt;
    std::vector<std::pair<std::string, std::string>> out;
    const auto devices = reported->find("devices");
    if (devices == reported->end() || !devices->is_object()) return out;
    for (const auto& [key, section] : devices->items()) {
        const auto id = decode_key(key);
        if (!id || id->empty() || !section.is_object()) continue;
        out.emplace_back(*id, section.dump());
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> reported_rebase(
    const std::vector<std::pair<std::string, std::string>>& hub,
    const std::vector<std::pair<std::string, std::string>>& local) {
    std::unordered_map<std::string, const std::string*> held;
    for (const auto& [id, d] : hub) held[id] = &d;
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [id, sent] : local) {
        const auto h = held.find(id);
        const std::string hub_doc = h == held.end() ? std::string("{}") : *h->second;
        if (diff_patch(sent, hub_doc) != "{}") out.emplace_back(id, hub_doc);
    }
    return out;
}

std::optional<std::int64_t> patch_version(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
    const auto v = doc.find("$version");
    if (v == doc.end() || !v->is_number_integer()) return std::nullopt;
    return v->get<std::int64_t>();
}

}  // namespace hubgate::twins
