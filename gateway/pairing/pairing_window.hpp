// The pairing window: while it is open, devices of `register = "window"` enrollment groups are
// registered on first contact. Opened and closed by `hubgate pair` through the control socket;
// closes by itself; never survives a restart (a new gateway starts closed). Observers (metrics,
// DNS-SD's `pair=open|closed`) hear every change, including expiry, on the Asio loop.
// Io thread only, except is_open() and closes_at(), which any thread may read (metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace hubgate::pairing {

class PairingWindow {
public:
    explicit PairingWindow(boost::asio::io_context& io);
    ~PairingWindow();
    PairingWindow(const PairingWindow&) = delete;
    PairingWindow& operator=(const PairingWindow&) = delete;

    bool is_open() const noexcept { return open_.load(std::memory_order_relaxed); }
    // Opens the window for `duration` from now (an open window gets the new end). Observers are
    // told only when it was closed.
    void open(std::chrono::seconds duration);
    // Closes it now; observers are told if it was open.
    void close();
    // Whole seconds until it closes (rounded up); 0 when closed.
    std::chrono::seconds time_left() const;
    // When it closes (system clock); the epoch when closed.
    std::chrono::system_clock::time_point closes_at() const;
    // Called with true when the window opens and false when it closes (by `pair close`, by expiry,
    // or when the gateway stops), on the io thread. Register before the io_context runs.
    void on_change(std::function<void(bool open)> fn);

private:
    void notify(bool open);
    struct Timer;
    std::unique_ptr<Timer> timer_;
    std::atomic<bool> open_{false};
    std::chrono::steady_clock::time_point ends_{};
    std::atomic<std::int64_t> ends_wall_ms_{0};  // system clock, ms since the epoch; 0 = closed
    std::vector<std::function<void(bool)>> observers_;
};

}  // namespace hubgate::pairing
