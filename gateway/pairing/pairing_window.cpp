#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/pairing/pairing_window.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace hubgate::pairing {

struct PairingWindow::Timer {
    explicit Timer(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
};

PairingWindow::PairingWindow(boost::asio::io_context& io) : timer_(std::make_unique<Timer>(io)) {}

PairingWindow::~PairingWindow() = default;

void PairingWindow::open(std::chrono::seconds duration) {
    const bool was_open = is_open();
    ends_ = std::chrono::steady_clock::now() + duration;
    ends_wall_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                            (std::chrono::system_clock::now() + duration).time_since_epoch())
                            .count(),
                        std::memory_order_relaxed);
    open_.store(true, std::memory_order_relaxed);
    // A steady timer: a wall clock set back or forward (NTP on a Pi without an RTC) neither
    // shortens nor stretches the window.
    timer_->timer.expires_at(ends_);
    timer_->timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec || !is_open()) return;
        close();
    });
    if (!was_open) notify(true);
}

void PairingWindow::close() {
    timer_->timer.cancel();
    if (!open_.exchange(false, std::memory_order_relaxed)) return;
    ends_ = {};
    ends_wall_ms_.store(0, std::memory_order_relaxed);
    notify(false);
}

std::chrono::seconds PairingWindow::time_left() const {
    if (!is_open()) return std::chrono::seconds(0);
    const auto left = ends_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return std::chrono::seconds(0);
    return std::chrono::ceil<std::chrono::seconds>(left);
}

std::chrono::system_clock::time_point PairingWindow::closes_at() const {
    const std::int64_t ms = ends_wall_ms_.load(std::memory_order_relaxed);
    if (!is_open() || ms == 0) return {};
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds(ms)));
}

void PairingWindow::on_change(std::function<void(bool)> fn) { observers_.push_back(std::move(fn)); }

void PairingWindow::notify(bool open) {
    for (const auto& fn : observers_) fn(open);
}

}  // namespace hubgate::pairing
