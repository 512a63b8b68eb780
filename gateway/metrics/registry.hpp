// Counters and gauges that every stage registers into; rendered as Prometheus text by the
// metrics server. Updating a metric is one relaxed atomic op: safe on hot paths and any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hubgate::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

class Gauge {
public:
    void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept;
    double value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> v_{0};
};

class Registry {
public:
    // Returns the metric for (name, labels), creating it on first use. References stay valid for
    // the registry's lifetime. Names follow Prometheus rules (hubgate_..._total for counters).
    Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
    Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
    // A gauge computed at scrape time (e.g. store depth). fn must be thread-safe.
    void gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                  std::function<double()> fn);
    // A counter computed at scrape time, for values that grow continuously (e.g. seconds spent
    // disconnected, including the outage still under way). fn must be thread-safe and never decrease.
    void counter_fn(const std::string& name, const std::string& help, const Labels& labels,
                    std::function<double()> fn);

    // Prometheus text exposition format 0.0.4.
    std::string render() const;

private:
    enum class Kind { counter, gauge, gauge_fn, counter_fn };
    struct Series {
        std::string name;
        std::string help;
        Kind kind;
        Labels labels;
        Counter counter;
        Gauge gauge;
        std::function<double()> fn;
    };
    Series& find_or_add(const std::string& name, const std::string& help, Kind kind,
                        const Labels& labels);

    mutable std::mutex mu_;
    std::deque<Series> series_;  // deque: stable addresses
};

}  // namespace hubgate::metrics
