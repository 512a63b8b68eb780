#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include "gateway/discovery/asio_poll.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <avahi-common/timeval.h>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>

using namespace hubgate::discovery;
using namespace std::chrono_literals;

namespace {

struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() {
        REQUIRE(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    }
    ~Pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    void put() { REQUIRE(::write(fds[1], "x", 1) == 1); }
    void take() {
        char c;
        while (::read(fds[0], &c, 1) == 1) {
        }
    }
};

struct Seen {
    int calls = 0;
    AvahiWatchEvent last{};
    const AvahiPoll* api = nullptr;
    Pipe* pipe = nullptr;
    bool free_inside = false;
    bool disable_inside = false;
};

void on_watch(AvahiWatch* w, int, AvahiWatchEvent ev, void* ud) {
    auto* s = static_cast<Seen*>(ud);
    ++s->calls;
    s->last = ev;
    CHECK(s->api->watch_get_events(w) == ev);
    if (s->pipe) s->pipe->take();
    if (s->disable_inside) s->api->watch_update(w, static_cast<AvahiWatchEvent>(0));
    if (s->free_inside) s->api->watch_free(w);
}

void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
}

}  // namespace

TEST_CASE("a watch reports its descriptor readable, and again each time data arrives") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen s;
    s.api = poll.get();
    s.pipe = &p;
    AvahiWatch* w = s.api->watch_new(s.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &s);
    REQUIRE(w);
    run_for(io, 30ms);
    CHECK(s.calls == 0);
    p.put();
    run_for(io, 30ms);
    CHECK(s.calls == 1);
    CHECK(s.last == AVAHI_WATCH_IN);
    p.put();
    run_for(io, 30ms);
    CHECK(s.calls == 2);
    s.api->watch_free(w);
    CHECK(poll.watches() == 0);
}

TEST_CASE("data left unread is reported again (level-triggered, as Avahi expects)") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen s;
    s.api = poll.get();
    AvahiWatch* w = s.api->watch_new(s.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &s);
    p.put();
    io.run_one_for(100ms);
    CHECK(s.calls == 1);
    io.run_one_for(100ms);
    CHECK(s.calls == 2);
    s.api->watch_free(w);
}

TEST_CASE("a watch updated to no events is quiet, and wakes again when updated back") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen s;
    s.api = poll.get();
    s.disable_inside = true;
    AvahiWatch* w = s.api->watch_new(s.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &s);
    p.put();
    run_for(io, 30ms);
    CHECK(s.calls == 1);  // data still there, but the watch wants nothing
    s.disable_inside = false;
    s.pipe = &p;
    s.api->watch_update(w, AVAHI_WATCH_IN);
    run_for(io, 30ms);
    CHECK(s.calls == 2);
    s.api->watch_free(w);
}

TEST_CASE("a watch for writing reports a writable descriptor") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen s;
    s.api = poll.get();
    s.free_inside = true;
    s.api->watch_new(s.api, p.fds[1], AVAHI_WATCH_OUT, on_watch, &s);
    run_for(io, 30ms);
    CHECK(s.calls == 1);
    CHECK((s.last & AVAHI_WATCH_OUT) != 0);
    CHECK(poll.watches() == 0);  // freed inside its own callback
}

TEST_CASE("two watches on one descriptor both work (D-Bus gives Avahi a read and a write watch)") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen r, wr;
    r.api = wr.api = poll.get();
    r.pipe = &p;
    wr.disable_inside = true;
    // a socketpair end is readable and writable; a pipe's read end only readable, so use the same fd
    // for two read watches and check both fire
    AvahiWatch* a = r.api->watch_new(r.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &r);
    AvahiWatch* b = wr.api->watch_new(wr.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &wr);
    REQUIRE(a);
    REQUIRE(b);
    p.put();
    run_for(io, 30ms);
    CHECK(r.calls + wr.calls >= 1);
    CHECK(wr.calls <= 1);
    r.api->watch_free(a);
    wr.api->watch_free(b);
    CHECK(poll.watches() == 0);
}

namespace {
struct Fired {
    int calls = 0;
    const AvahiPoll* api = nullptr;
    bool free_inside = false;
    int rearm_ms = -1;
};
void on_timeout(AvahiTimeout* t, void* ud) {
    auto* f = static_cast<Fired*>(ud);
    ++f->calls;
    if (f->rearm_ms >= 0) {
        timeval tv;
        f->api->timeout_update(t, avahi_elapse_time(&tv, static_cast<unsigned>(f->rearm_ms), 0));
        f->rearm_ms = -1;
    }
    if (f->free_inside) f->api->timeout_free(t);
}
}  // namespace

TEST_CASE("a timeout fires once at its absolute time and stays off until updated") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Fired f;
    f.api = poll.get();
    timeval tv;
    const auto t0 = std::chrono::steady_clock::now();
    AvahiTimeout* t = f.api->timeout_new(f.api, avahi_elapse_time(&tv, 40, 0), on_timeout, &f);
    run_for(io, 20ms);
    CHECK(f.calls == 0);
    run_for(io, 80ms);
    CHECK(f.calls == 1);
    CHECK(std::chrono::steady_clock::now() - t0 >= 40ms);
    run_for(io, 50ms);
    CHECK(f.calls == 1);
    f.api->timeout_update(t, avahi_elapse_time(&tv, 10, 0));
    run_for(io, 60ms);
    CHECK(f.calls == 2);
    f.api->timeout_free(t);
    CHECK(poll.timeouts() == 0);
}

TEST_CASE("a timeout in the past fires at once, a null time disarms") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Fired f;
    f.api = poll.get();
    timeval past;
    gettimeofday(&past, nullptr);
    past.tv_sec -= 5;
    AvahiTimeout* t = f.api->timeout_new(f.api, &past, on_timeout, &f);
    io.run_one_for(100ms);
    CHECK(f.calls == 1);
    timeval tv;
    f.api->timeout_update(t, avahi_elapse_time(&tv, 20, 0));
    f.api->timeout_update(t, nullptr);
    run_for(io, 60ms);
    CHECK(f.calls == 1);
    AvahiTimeout* off = f.api->timeout_new(f.api, nullptr, on_timeout, &f);
    run_for(io, 30ms);
    CHECK(f.calls == 1);
    f.api->timeout_free(t);
    f.api->timeout_free(off);
}

TEST_CASE("a timeout may re-arm or free itself inside its callback") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Fired f;
    f.api = poll.get();
    f.rearm_ms = 10;
    timeval tv;
    f.api->timeout_new(f.api, avahi_elapse_time(&tv, 5, 0), on_timeout, &f);
    run_for(io, 80ms);
    CHECK(f.calls == 2);
    Fired g;
    g.api = poll.get();
    g.free_inside = true;
    g.api->timeout_new(g.api, avahi_elapse_time(&tv, 5, 0), on_timeout, &g);
    run_for(io, 50ms);
    CHECK(g.calls == 1);
    CHECK(poll.timeouts() == 1);  // f's, disabled after its second expiry; g's is gone
}

TEST_CASE("a freed timeout never fires, even when its time has come") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Fired f;
    f.api = poll.get();
    timeval tv;
    AvahiTimeout* t = f.api->timeout_new(f.api, avahi_elapse_time(&tv, 1, 0), on_timeout, &f);
    std::this_thread::sleep_for(5ms);
    f.api->timeout_free(t);
    run_for(io, 30ms);
    CHECK(f.calls == 0);
}

TEST_CASE("a watch whose descriptor Avahi closed does not spin the loop") {
    boost::asio::io_context io;
    AsioPoll poll(io);
    Pipe p;
    Seen s;
    s.api = poll.get();
    AvahiWatch* w = s.api->watch_new(s.api, p.fds[0], AVAHI_WATCH_IN, on_watch, &s);
    p.put();
    ::close(p.fds[0]);  // the duplicate keeps the pipe readable
    p.fds[0] = -1;
    io.restart();
    const auto handlers = io.run_for(50ms);
    CHECK(handlers <= 2);
    CHECK(s.calls == 0);
    s.api->watch_free(w);
}
