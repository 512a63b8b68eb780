#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/pairing/pairing.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "gateway/metrics/registry.hpp"
#include "gateway/model/sas_token.hpp"

namespace hubgate::pairing {

Pairing::Pairing(boost::asio::io_context& io, config::Pairing options, std::vector<config::Enrollment> enrollments,
                 metrics::Registry& registry)
    : options_(options),
      enrollments_(std::move(enrollments)),
      window_(io),
      registry_(registry),
      auth_failures_(registry.counter("hubgate_auth_failures_total",
                                      "device authentications refused (any listener, any reason)")),
      auth_delayed_(registry.counter("hubgate_auth_delayed_total",
                                     "refusals held back because their source address kept failing")),
      auth_delay_ms_(registry.counter("hubgate_auth_delay_milliseconds_total",
                                      "time refusals were held back in all, in milliseconds")) {
    registry.gauge_fn("hubgate_pairing_window_open", "1 while the pairing window is open", {},
                      [this] { return window_.is_open() ? 1.0 : 0.0; });
    // The end as a wall-clock time, read at scrape time (a `pair open` on an open window moves it):
    // `hubgate status` and dashboards compute the time left.
    registry.gauge_fn("hubgate_pairing_window_closes_at_seconds",
                      "when the open pairing window closes (unix time); 0 while closed", {}, [this] {
                          const auto at = window_.closes_at().time_since_epoch();
                          return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(at).count());
                      });
    window_.on_change([this](bool open) {
        if (open)
            spdlog::info("pairing: window open for {} s", window_.time_left().count());
        else
            spdlog::info("pairing: window closed");
    });
    registry.gauge("hubgate_pairing_pending_devices", "devices refused while the window was closed, listed by "
                                                      "`hubgate devices pending`");
}

Pairing::~Pairing() = default;

void Pairing::set_enrollments(std::vector<config::Enrollment> enrollments) { enrollments_ = std::move(enrollments); }

std::vector<Candidate> Pairing::candidates(std::string_view device_id) const {
    std::vector<Candidate> out;
    out.reserve(enrollments_.size());
    for (const auto& e : enrollments_) {
        auto key = derive_device_key(e.key, device_id);
        if (key) out.push_back({e.id, std::move(*key), e.module_id});
    }
    return out;
}

Admission Pairing::admit(std::string_view device_id, const Candidate& c, std::string_view address) {
    const auto it = std::find_if(enrollments_.begin(), enrollments_.end(),
                                 [&](const config::Enrollment& e) { return e.id == c.enrollment; });
    if (it == enrollments_.end()) return Admission::failed;
    const bool always = it->register_mode == config::EnrollmentRegister::always;
    if (!always && !window_.is_open()) {
        const bool first = !pending_.contains(device_id);
        pending_.record(device_id, c.enrollment, address, PendingTable::Clock::now());
        registry_.gauge("hubgate_pairing_pending_devices", "").set(static_cast<double>(pending_.size()));
        registry_.counter("hubgate_pairing_refused_total", "devices of an enrollment group refused while the "
                          "pairing window was closed", {{"enrollment", c.enrollment}}).inc();
        if (first)
            spdlog::warn("pairing: device {} from {} holds a key of enrollment {} but the pairing window is closed: "
                         "refused and pending (`hubgate devices approve {}` or `hubgate pair open`)",
                         device_id, address, c.enrollment, device_id);
        return Admission::pending;
    }
    if (!registrar_) return Admission::failed;
    if (auto err = registrar_({std::string(device_id), c.key, c.module_id, c.enrollment})) {
        spdlog::error("pairing: cannot register device {} of enrollment {}: {}", device_id, c.enrollment, err->reason);
        return Admission::failed;
    }
    pending_.remove(device_id);
    registry_.gauge("hubgate_pairing_pending_devices", "").set(static_cast<double>(pending_.size()));
    registry_.counter("hubgate_pairing_registered_total", "devices registered through an enrollment group",
                      {{"enrollment", c.enrollment}}).inc();
    spdlog::info("pairing: device {} from {} registered through enrollment {}{}", device_id, address, c.enrollment,
                 always ? " (register = always)" : " (window open)");
    return Admission::registered;
}

std::vector<PendingDevice> Pairing::pending() {
    auto list = pending_.list(PendingTable::Clock::now());
    if (known_) {
        // Registered meanwhile some other way (`devices add`, a config entry): not pending any more.
        for (const auto& d : list)
            if (known_(d.id)) pending_.remove(d.id);
        std::erase_if(list, [&](const PendingDevice& d) { return known_(d.id); });
    }
    registry_.gauge("hubgate_pairing_pending_devices", "").set(static_cast<double>(pending_.size()));
    return list;
}

Result<std::string> Pairing::approve(std::string_view device_id) {
    if (known_ && known_(device_id)) {
        pending_.remove(device_id);
        return Error{"device " + std::string(device_id) + " is registered already"};
    }
    auto entry = pending_.take(device_id, PendingTable::Clock::now());
    if (!entry) return Error{"no pending device " + std::string(device_id) + " (see `hubgate devices pending`)"};
    const auto it = std::find_if(enrollments_.begin(), enrollments_.end(),
                                 [&](const config::Enrollment& e) { return e.id == entry->enrollment; });
    if (it == enrollments_.end()) return Error{"enrollment " + entry->enrollment + " is no longer configured"};
    auto key = derive_device_key(it->key, device_id);
    if (!key) return Error{key.error()};
    if (!registrar_) return Error{"the gateway cannot register devices"};
    if (auto err = registrar_({std::string(device_id), *key, it->module_id, it->id})) {
        pending_.record(entry->id, entry->enrollment, entry->address, entry->last);
        return Error{"cannot register device " + std::string(device_id) + ": " + err->reason};
    }
    registry_.gauge("hubgate_pairing_pending_devices", "").set(static_cast<double>(pending_.size()));
    registry_.counter("hubgate_pairing_registered_total", "devices registered through an enrollment group",
                      {{"enrollment", it->id}}).inc();
    spdlog::info("pairing: pending device {} approved (enrollment {})", device_id, it->id);
    return it->id;
}

std::chrono::milliseconds Pairing::auth_failed(std::string_view address) {
    auth_failures_.inc();
    const auto delay = throttle_.failed(address, AuthThrottle::Clock::now());
    if (delay.count() > 0) {
        auth_delayed_.inc();
        auth_delay_ms_.inc(static_cast<std::uint64_t>(delay.count()));
    }
    return delay;
}

}  // namespace hubgate::pairing
