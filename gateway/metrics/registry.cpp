#include "gateway/metrics/registry.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>

namespace hubgate::metrics {

void Gauge::add(double d) noexcept {
    double cur = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
}

Registry::Series& Registry::find_or_add(const std::string& name, const std::string& help, Kind kind,
                                        const Labels& labels) {
    std::lock_guard lock(mu_);
    for (auto& s : series_) {
        if (s.name == name && s.labels == labels) {
            if (s.kind != kind) throw std::logic_error("metric " + name + " registered with two kinds");
            return s;
        }
    }
    auto& s = series_.emplace_back();
    s.name = name;
    s.help = help;
    s.kind = kind;
    s.labels = labels;
    return s;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
    return find_or_add(name, help, Kind::counter, labels).counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
    return find_or_add(name, help, Kind::gauge, labels).gauge;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                        std::function<double()> fn) {
    auto& s = find_or_add(name, help, Kind::gauge_fn, labels);
    std::lock_guard lock(mu_);
    s.fn = std::move(fn);
}

void Registry::counter_fn(const std::string& name, const std::string& help, const Labels& labels,
                          std::function<double()> fn) {
    auto& s = find_or_add(name, help, Kind::counter_fn, labels);
    std::lock_guard lock(mu_);
    s.fn = std::move(fn);
}

namespace {

void append_escaped_label_value(std::string& out, const std::string& v) {
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

void append_number(std::string& out, double v) {
    if (std::isnan(v)) { out += "NaN"; return; }
    if (std::isinf(v)) { out += v > 0 ? "+Inf" : "-Inf"; return; }
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.17g", v);
    out += buf;
}

}  // namespace

std::string Registry::render() const {
    std::lock_guard lock(mu_);
    // Group series by name so HELP/TYPE appear once per family, families in registration order.
    std::vector<std::string> order;
    std::map<std::string, std::vector<const Series*>> families;
    for (const auto& s : series_) {
        auto& fam = families[s.name];
        if (fam.empty()) order.push_back(s.name);
        fam.push_back(&s);
    }
    std::string out;
    out.reserve(series_.size() * 96);
    for (const auto& name : order) {
        const auto& fam = families[name];
        out += "# HELP " + name + " " + fam.front()->help + "\n";
        const Kind kind = fam.front()->kind;
        out += "# TYPE " + name + (kind == Kind::counter || kind == Kind::counter_fn ? " counter\n" : " gauge\n");
        for (const Series* s : fam) {
            out += name;
            if (!s->labels.empty()) {
                out += '{';
                bool first = true;
                for (const auto& [k, v] : s->labels) {
                    if (!first) out += ',';
                    first = false;
                    out += k;
                    out += "=\"";
                    append_escaped_label_value(out, v);
                    out += '"';
                }
                out += '}';
            }
            out += ' ';
            switch (s->kind) {
                case Kind::counter: append_number(out, static_cast<double>(s->counter.value())); break;
                case Kind::gauge: append_number(out, s->gauge.value()); break;
                case Kind::gauge_fn:
                case Kind::counter_fn: append_number(out, s->fn ? s->fn() : 0.0); break;
            }
            out += '\n';
        }
    }
    return out;
}

}  // namespace hubgate::metrics
