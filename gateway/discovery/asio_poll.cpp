#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/discovery/asio_poll.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace hubgate::discovery {

namespace asio = boost::asio;

namespace {

// Held by a shared_ptr: a wait in flight keeps its watch alive after watch_free, and sees `dead`.
struct Watch {
    AsioPoll::Impl* owner = nullptr;
    int fd = -1;  // Avahi's descriptor
    // A duplicate of fd: D-Bus gives Avahi two watches (read and write) on one socket, and one
    // epoll set cannot hold the same descriptor twice. Closed at watch_free; Avahi's fd is never touched.
    asio::posix::stream_descriptor sd;
    AvahiWatchEvent events{};
    AvahiWatchEvent revents{};  // what the callback in progress was told
    AvahiWatchCallback callback = nullptr;
    void* userdata = nullptr;
    bool reading = false, writing = false, dead = false;
    explicit Watch(asio::io_context& io) : sd(io) {}
};

struct Timeout {
    AsioPoll::Impl* owner = nullptr;
    asio::steady_timer timer;
    AvahiTimeoutCallback callback = nullptr;
    void* userdata = nullptr;
    unsigned generation = 0;  // a handler from an earlier arming (already queued) does nothing
    bool dead = false;
    explicit Timeout(asio::io_context& io) : timer(io) {}
};

AvahiWatch* to_avahi(Watch* w) { return reinterpret_cast<AvahiWatch*>(w); }
Watch* from_avahi(AvahiWatch* w) { return reinterpret_cast<Watch*>(w); }
AvahiTimeout* to_avahi(Timeout* t) { return reinterpret_cast<AvahiTimeout*>(t); }
Timeout* from_avahi(AvahiTimeout* t) { return reinterpret_cast<Timeout*>(t); }

}  // namespace

struct AsioPoll::Impl {
    explicit Impl(asio::io_context& c) : io(c) {
        api.userdata = this;
        api.watch_new = &Impl::watch_new;
        api.watch_update = &Impl::watch_update;
        api.watch_get_events = &Impl::watch_get_events;
        api.watch_free = &Impl::watch_free;
        api.timeout_new = &Impl::timeout_new;
        api.timeout_update = &Impl::timeout_update;
        api.timeout_free = &Impl::timeout_free;
    }

    asio::io_context& io;
    AvahiPoll api{};
    std::unordered_map<Watch*, std::shared_ptr<Watch>> watch_set;
    std::unordered_map<Timeout*, std::shared_ptr<Timeout>> timeout_set;

    static Impl& self(const AvahiPoll* api) { return *static_cast<Impl*>(api->userdata); }

    // Starts the waits the watch's events ask for and that are not already in flight.
    static void arm(const std::shared_ptr<Watch>& w) {
        if (w->dead) return;
        if ((w->events & AVAHI_WATCH_IN) && !w->reading) {
            w->reading = true;
            w->sd.async_wait(asio::posix::stream_descriptor::wait_read, [w](const boost::system::error_code& ec) {
                w->reading = false;
                ready(w, ec);
            });
        }
        if ((w->events & AVAHI_WATCH_OUT) && !w->writing) {
            w->writing = true;
            w->sd.async_wait(asio::posix::stream_descriptor::wait_write, [w](const boost::system::error_code& ec) {
                w->writing = false;
                ready(w, ec);
            });
        }
    }

    // The descriptor became ready: ask poll() what exactly happened (Avahi wants IN/OUT/ERR/HUP),
    // run the callback, and wait again for what the watch still wants.
    static void ready(const std::shared_ptr<Watch>& w, const boost::system::error_code& ec) {
        if (w->dead || ec == asio::error::operation_aborted) return;
        if (ec) {
            spdlog::warn("discovery: waiting on Avahi's descriptor {} failed: {}", w->fd, ec.message());
            return;
        }
        pollfd p{w->fd, static_cast<short>(w->events & (AVAHI_WATCH_IN | AVAHI_WATCH_OUT)), 0};
        const int n = ::poll(&p, 1, 0);
        if (n > 0 && (p.revents & POLLNVAL)) {
            // Avahi's descriptor was closed under a live watch (our duplicate kept the socket ready):
            // waiting again would spin. Avahi frees the watch when it notices.
            spdlog::warn("discovery: Avahi's descriptor {} was closed while watched", w->fd);
            return;
        }
        const auto happened = static_cast<AvahiWatchEvent>(n > 0 ? p.revents : 0);
        if (happened & (w->events | AVAHI_WATCH_ERR | AVAHI_WATCH_HUP)) {
            w->revents = happened;
            w->callback(to_avahi(w.get()), w->fd, happened, w->userdata);  // may update or free w
            w->revents = static_cast<AvahiWatchEvent>(0);
        }
        arm(w);
    }

    static AvahiWatch* watch_new(const AvahiPoll* api, int fd, AvahiWatchEvent events, AvahiWatchCallback cb,
                                 void* userdata) {
        Impl& me = self(api);
        const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0) return nullptr;
        auto w = std::make_shared<Watch>(me.io);
        boost::system::error_code ec;
        w->sd.assign(dup, ec);
        if (ec) {
            ::close(dup);
            spdlog::warn("discovery: cannot watch Avahi's descriptor {}: {}", fd, ec.message());
            return nullptr;
        }
        w->owner = &me;
        w->fd = fd;
        w->events = events;
        w->callback = cb;
        w->userdata = userdata;
        me.watch_set.emplace(w.get(), w);
        arm(w);
        return to_avahi(w.get());
    }

    static void watch_update(AvahiWatch* aw, AvahiWatchEvent events) {
        Watch* w = from_avahi(aw);
        w->events = events;  // a wait in flight for an event no longer wanted finds nothing to do
        arm(w->owner->watch_set.at(w));
    }

    static AvahiWatchEvent watch_get_events(AvahiWatch* aw) { return from_avahi(aw)->revents; }

    static void watch_free(AvahiWatch* aw) {
        Watch* w = from_avahi(aw);
        w->dead = true;
        boost::system::error_code ignored;
        w->sd.close(ignored);  // the duplicate only; waits in flight end with operation_aborted
        w->owner->watch_set.erase(w);
    }

    static void arm(const std::shared_ptr<Timeout>& t, const struct timeval* tv) {
        ++t->generation;
        if (!tv) {
            t->timer.cancel();
            return;
        }
        // tv is an absolute gettimeofday() time: turn it into a delay on the steady clock.
        timeval now{};
        gettimeofday(&now, nullptr);
        const auto delay = std::chrono::seconds(tv->tv_sec - now.tv_sec) +
                           std::chrono::microseconds(tv->tv_usec - now.tv_usec);
        t->timer.expires_after(std::max<std::chrono::steady_clock::duration>(delay, std::chrono::steady_clock::duration::zero()));
        t->timer.async_wait([t, gen = t->generation](const boost::system::error_code& ec) {
            if (ec || t->dead || gen != t->generation) return;
            // Expired: disabled until timeout_update. The callback may update or free t.
            t->callback(to_avahi(t.get()), t->userdata);
        });
    }

    static AvahiTimeout* timeout_new(const AvahiPoll* api, const struct timeval* tv, AvahiTimeoutCallback cb,
                                     void* userdata) {
        Impl& me = self(api);
        auto t = std::make_shared<Timeout>(me.io);
        t->owner = &me;
        t->callback = cb;
        t->userdata = userdata;
        me.timeout_set.emplace(t.get(), t);
        arm(t, tv);
        return to_avahi(t.get());
    }

    static void timeout_update(AvahiTimeout* at, const struct timeval* tv) {
        Timeout* t = from_avahi(at);
        arm(t->owner->timeout_set.at(t), tv);
    }

    static void timeout_free(AvahiTimeout* at) {
        Timeout* t = from_avahi(at);
        t->dead = true;
        t->timer.cancel();
        t->owner->timeout_set.erase(t);  // a handler in flight holds it until it has run
    }
};

AsioPoll::AsioPoll(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}

AsioPoll::~AsioPoll() {
    for (auto& [p, w] : impl_->watch_set) {
        w->dead = true;
        boost::system::error_code ignored;
        w->sd.close(ignored);
    }
    for (auto& [p, t] : impl_->timeout_set) {
        t->dead = true;
        t->timer.cancel();
    }
}

const AvahiPoll* AsioPoll::get() const noexcept { return &impl_->api; }
std::size_t AsioPoll::watches() const noexcept { return impl_->watch_set.size(); }
std::size_t AsioPoll::timeouts() const noexcept { return impl_->timeout_set.size(); }

}  // namespace hubgate::discovery
