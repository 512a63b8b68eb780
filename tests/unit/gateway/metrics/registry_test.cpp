#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "gateway/metrics/registry.hpp"

using hubgate::metrics::Registry;

TEST_CASE("a counter renders with HELP, TYPE and its value") {
    Registry r;
    r.counter("hubgate_things_total", "things seen").inc(3);
    const auto text = r.render();
    CHECK(text.find("# HELP hubgate_things_total things seen\n") != std::string::npos);
    CHECK(text.find("# TYPE hubgate_things_total counter\n") != std::string::npos);
    CHECK(text.find("\nhubgate_things_total 3\n") != std::string::npos);
}

TEST_CASE("registering the same name and labels twice returns the same series") {
    Registry r;
    auto& a = r.counter("hubgate_x_total", "x", {{"reason", "full"}});
    auto& b = r.counter("hubgate_x_total", "x", {{"reason", "full"}});
    CHECK(&a == &b);
    auto& c = r.counter("hubgate_x_total", "x", {{"reason", "ttl"}});
    CHECK(&a != &c);
}

TEST_CASE("series of one family share one HELP line and keep their labels") {
    Registry r;
    r.counter("hubgate_dropped_total", "dropped", {{"reason", "ttl"}}).inc();
    r.counter("hubgate_dropped_total", "dropped", {{"reason", "overflow"}}).inc(2);
    const auto text = r.render();
    CHECK(text.find("# HELP hubgate_dropped_total") == text.rfind("# HELP hubgate_dropped_total"));
    CHECK(text.find("hubgate_dropped_total{reason=\"ttl\"} 1\n") != std::string::npos);
    CHECK(text.find("hubgate_dropped_total{reason=\"overflow\"} 2\n") != std::string::npos);
}

TEST_CASE("label values are escaped as the Prometheus text format requires") {
    Registry r;
    r.gauge("hubgate_g", "g", {{"path", "a\"b\\c\nd"}}).set(1);
    CHECK(r.render().find("hubgate_g{path=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
}

TEST_CASE("a gauge function is evaluated at render time") {
    Registry r;
    double depth = 5;
    r.gauge_fn("hubgate_depth", "depth", {}, [&] { return depth; });
    CHECK(r.render().find("hubgate_depth 5\n") != std::string::npos);
    depth = 7.5;
    CHECK(r.render().find("hubgate_depth 7.5\n") != std::string::npos);
}

TEST_CASE("a counter function is evaluated at render time, typed counter, with fractions kept") {
    Registry r;
    double seconds = 0;
    r.counter_fn("hubgate_away_seconds_total", "away", {}, [&] { return seconds; });
    CHECK(r.render().find("# TYPE hubgate_away_seconds_total counter\n") != std::string::npos);
    CHECK(r.render().find("hubgate_away_seconds_total 0\n") != std::string::npos);
    seconds = 2.25;
    CHECK(r.render().find("hubgate_away_seconds_total 2.25\n") != std::string::npos);
    CHECK_THROWS(r.gauge_fn("hubgate_away_seconds_total", "away", {}, [] { return 0.0; }));
}

TEST_CASE("one name registered as two kinds is a programming error") {
    Registry r;
    r.counter("hubgate_dual", "d");
    CHECK_THROWS(r.gauge("hubgate_dual", "d"));
}

TEST_CASE("counters incremented from many threads lose no increments") {
    Registry r;
    auto& c = r.counter("hubgate_concurrent_total", "c");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) c.inc();
        });
    for (auto& t : threads) t.join();
    CHECK(c.value() == 40000);
}
