#include "gateway/twins/twin_service.hpp"

#include <future>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/metrics/registry.hpp"
#include "gateway/twins/twin_json.hpp"
#include "store/store.hpp"

namespace hubgate::twins {

namespace {

void count(metrics::Counter* c) {
    if (c) c->inc();
}

}  // namespace

TwinService::TwinService(store::Store& store, metrics::Registry* registry) : store_(store) {
    if (!registry) return;
    const char* name = "hubgate_twin_requests_total";
    const char* help = "Twin requests of local devices and of the gateway's own twin upstream, by outcome";
    counters_.get_ok = &registry->counter(name, help, {{"op", "get"}, {"result", "ok"}});
    counters_.get_failed = &registry->counter(name, help, {{"op", "get"}, {"result", "failed"}});
    counters_.reported_ok = &registry->counter(name, help, {{"op", "reported"}, {"result", "ok"}});
    counters_.reported_refused = &registry->counter(name, help, {{"op", "reported"}, {"result", "refused"}});
    counters_.reported_failed = &registry->counter(name, help, {{"op", "reported"}, {"result", "failed"}});
}

void TwinService::get_twin(const std::string& device_id, std::function<void(TwinAnswer)> done) {
    store_.twin_get(device_id, [this, done = std::move(done)](std::optional<store::StoredTwin> t) {
        if (!t) {
            count(counters_.get_failed);
            done({503, error_body(503001, "the gateway's store is not available"), 0});
            return;
        }
        count(counters_.get_ok);
        done({200, twin_document(t->desired, t->desired_version, t->reported, t->reported_version), 0});
    });
}

void TwinService::get_desired(const std::string& device_id, std::function<void(TwinAnswer)> done) {
    store_.twin_get(device_id, [this, done = std::move(done)](std::optional<store::StoredTwin> t) {
        if (!t) {
            count(counters_.get_failed);
            done({503, error_body(503001, "the gateway's store is not available"), 0});
            return;
        }
        count(counters_.get_ok);
        done({200, with_version(t->desired, t->desired_version), t->desired_version});
    });
}

void TwinService::update_reported(const std::string& device_id, std::string patch,
                                  std::function<void(TwinAnswer)> done) {
    store_.twin_update(
        device_id, store::TwinSide::reported,
        [patch = std::move(patch)](const std::string& current) { return merge_patch(current, patch); },
        [this, done = std::move(done), device_id](store::TwinUpdate u) {
            if (!u.refusal.empty()) {
                count(counters_.reported_refused);
                spdlog::info("twin of device {}: reported patch refused: {}", device_id, u.refusal);
                done({400, error_body(400004, u.refusal), 0});
            } else if (!u.committed) {
                count(counters_.reported_failed);
                done({503, error_body(503001, "the gateway's store could not commit the patch"), 0});
            } else {
                count(counters_.reported_ok);
                if (on_reported_) on_reported_(device_id);  // upstream: reported.devices.<D>
                done({204, {}, u.version});
            }
        });
}

void TwinService::update_desired(const std::string& device_id, std::string patch) {
    update_desired(device_id, std::move(patch), {});
}

void TwinService::update_desired(const std::string& device_id, std::string patch, std::function<void()> finished) {
    const std::string shown = patch.substr(0, 200);
    store_.twin_update(
        device_id, store::TwinSide::desired,
        [patch](const std::string& current) { return merge_patch(current, patch); },
        [this, device_id, patch, shown, finished = std::move(finished)](store::TwinUpdate u) {
            struct Finish {
                const std::function<void()>& f;
                ~Finish() {
                    if (f) f();
                }
            } finish{finished};
            if (!u.refusal.empty()) {
                spdlog::warn("twin of device {}: desired patch {} refused: {}", device_id, shown, u.refusal);
                return;
            }
            if (!u.committed) {
                spdlog::error("twin of device {}: desired patch not stored (store failed)", device_id);
                return;
            }
            if (on_desired_) on_desired_(device_id, with_version(patch, u.version), u.version);
            if (on_desired_document_) on_desired_document_(device_id, with_version(u.document, u.version), u.version);
        });
}

std::size_t TwinService::apply_gateway_desired(std::string_view body) {
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        spdlog::warn("gateway twin: desired patch is not a JSON object; ignored");
        return 0;
    }
    const auto devices = doc.find("devices");
    if (devices == doc.end() || !devices->is_object()) return 0;
    // Returns only once every change is committed (or refused): the caller (Paho's thread) PUBACKs
    // the patch when this returns, so a crash cannot lose an acknowledged desired change.
    std::vector<std::future<void>> pending;
    std::size_t n = 0;
    for (const auto& [key, patch] : devices->items()) {
        const auto id = decode_key(key);
        if (!id || id->empty()) {
            spdlog::warn("gateway twin: desired.devices key '{}' is not an encoded device id; ignored", key.substr(0, 128));
            continue;
        }
        auto done = std::make_shared<std::promise<void>>();
        if (patch.is_null()) {
            // The device's whole section removed: every desired property it had goes.
            pending.push_back(done->get_future());
            store_.twin_update(
                *id, store::TwinSide::desired, [](const std::string&) -> Result<std::string> { return std::string("{}"); },
                [this, id = *id, done](store::TwinUpdate u) {
                    if (u.committed && on_desired_) on_desired_(id, with_version("{}", u.version), u.version);
                    if (u.committed && on_desired_document_)
                        on_desired_document_(id, with_version("{}", u.version), u.version);
                    done->set_value();
                });
        } else if (patch.is_object()) {
            pending.push_back(done->get_future());
            update_desired(*id, patch.dump(), [done] { done->set_value(); });
        } else {
            spdlog::warn("gateway twin: desired.devices.{} is not an object; ignored", key.substr(0, 128));
            continue;
        }
        ++n;
    }
    for (auto& f : pending) f.wait();
    return n;
}

}  // namespace hubgate::twins
