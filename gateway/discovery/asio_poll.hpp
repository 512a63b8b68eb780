// An AvahiPoll (avahi-common/watch.h) on the gateway's Boost.Asio loop: Avahi's watches become
// async_waits on the descriptor and its timeouts steady_timers, so Avahi's callbacks run on the
// loop's thread and no thread polls for Avahi. Used by the advertiser (and its tests).
#pragma once

#include <cstddef>
#include <memory>

#include <avahi-common/watch.h>

namespace boost::asio {
class io_context;
}

namespace hubgate::discovery {

class AsioPoll {
public:
    explicit AsioPoll(boost::asio::io_context& io);
    // Whatever Avahi has not freed is disarmed (its callbacks never run again).
    ~AsioPoll();
    AsioPoll(const AsioPoll&) = delete;
    AsioPoll& operator=(const AsioPoll&) = delete;

    const AvahiPoll* get() const noexcept;
    std::size_t watches() const noexcept;   // live (not yet freed) watches
    std::size_t timeouts() const noexcept;  // live timeouts

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::discovery
