// Pairing over the LAN (docs/pairing.md): the enrollment groups, the window, the pending devices and
// the failed-authentication slow-down, with their metrics. Implements the adapters' Enroller seam;
// gateway/app creates one, gives it the registrar that persists a device, and serves it on the
// control socket. Io thread only (the window's is_open() excepted).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/model/result.hpp"
#include "gateway/pairing/auth_throttle.hpp"
#include "gateway/pairing/enroller.hpp"
#include "gateway/pairing/pairing_window.hpp"
#include "gateway/pairing/pending_table.hpp"

namespace hubgate::metrics {
class Registry;
class Counter;
}  // namespace hubgate::metrics

namespace hubgate::pairing {

struct NewDevice {
    std::string id;
    std::string key;
    std::string module_id;
    std::string enrollment;
};

class Pairing : public Enroller {
public:
    Pairing(boost::asio::io_context& io, config::Pairing options, std::vector<config::Enrollment> enrollments,
            metrics::Registry& registry);
    ~Pairing() override;

    // Persists and activates a device (registry + device directory). Set before the adapters start.
    void set_registrar(std::function<Status(const NewDevice&)> fn) { registrar_ = std::move(fn); }
    // Whether an id is a device with a key now (a pending entry for it is then stale).
    void set_known(std::function<bool(std::string_view)> fn) { known_ = std::move(fn); }
    // SIGHUP: the config's enrollment groups again.
    void set_enrollments(std::vector<config::Enrollment> enrollments);
    const std::vector<config::Enrollment>& enrollments() const noexcept { return enrollments_; }

    PairingWindow& window() noexcept { return window_; }
    std::uint32_t default_window_seconds() const noexcept { return options_.window_seconds; }

    // Enroller
    std::vector<Candidate> candidates(std::string_view device_id) const override;
    Admission admit(std::string_view device_id, const Candidate& c, std::string_view address) override;

    std::vector<PendingDevice> pending();
    // Registers a pending device at once; its enrollment id, or why not.
    Result<std::string> approve(std::string_view device_id);

    // A refused authentication from `address` (an IP): how long to hold the refusal (counted).
    std::chrono::milliseconds auth_failed(std::string_view address);

private:
    config::Pairing options_;
    std::vector<config::Enrollment> enrollments_;
    PairingWindow window_;
    PendingTable pending_;
    AuthThrottle throttle_;
    metrics::Registry& registry_;
    metrics::Counter& auth_failures_;
    metrics::Counter& auth_delayed_;
    metrics::Counter& auth_delay_ms_;
    std::function<Status(const NewDevice&)> registrar_;
    std::function<bool(std::string_view)> known_;
};

}  // namespace hubgate::pairing
