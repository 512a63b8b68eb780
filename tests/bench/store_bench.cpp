// Store benchmark: append rate by group size and durability mode, bytes written to disk per message
// stored and deleted, and file size full versus drained. Prints ratios as well as absolute numbers,
// since the machines it runs on are shared. Usage: store_bench [DIR] [MESSAGES]
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <string>

#include "store/store.hpp"

using namespace hubgate;
namespace fs = std::filesystem;

namespace {

std::uint64_t write_bytes() {  // bytes this process caused to be sent to the block layer
    std::ifstream io("/proc/self/io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value)
        if (key == "write_bytes:") return value;
    return 0;
}

std::uint64_t file_bytes(const std::string& path) {
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : n;
}

HubMessage sample(std::uint64_t n) {
    HubMessage m;
    m.device_id = "sensor-0042";
    m.module_id = "thermostats";
    m.system.message_id = "msg-" + std::to_string(n);
    m.system.content_type = "application/json";
    m.properties.set("type", "telemetry");
    m.properties.set("site", "plant-7");
    m.properties.set("seq", std::to_string(n));
    m.body.assign(200, 'x');
    return m;
}

struct Run {
    double appends_per_s = 0;
    double write_bytes_per_stored = 0;
    double write_bytes_per_deleted = 0;
    std::uint64_t full_file = 0;
    std::uint64_t drained_file = 0;
    std::uint64_t drained_wal = 0;
};

Run run(const std::string& dir, config::Durability durability, std::size_t group, std::size_t total) {
    const std::string path = dir + "/bench.db";
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
    store::Options options;
    options.limits.path = path;
    options.limits.durability = durability;
    metrics::Registry registry;
    auto store = std::move(store::Store::open(options, registry)).value();

    std::vector<HubMessage> batch;
    const auto io0 = write_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < total; done += group) {
        batch.clear();
        for (std::size_t i = 0; i < group; ++i) batch.push_back(sample(done + i));
        std::promise<void> durable;
        store->append(std::move(batch), [&](const store::AppendResult&) { durable.set_value(); });
        durable.get_future().wait();
        batch = {};
    }
    const auto t1 = std::chrono::steady_clock::now();
    store->maintain();  // checkpoint, so the file holds the rows and the write counts include it
    const auto io1 = write_bytes();

    Run r;
    r.appends_per_s = static_cast<double>(total) / std::chrono::duration<double>(t1 - t0).count();
    r.write_bytes_per_stored = static_cast<double>(io1 - io0) / static_cast<double>(total);
    r.full_file = file_bytes(path);

    // Drain the way the batcher does: delete acknowledged ranges of a few hundred rows.
    const auto last = store->stats().last_seq;
    for (std::int64_t first = 1; first <= last; first += 500) store->remove({{first, first + 499}});
    store->flush();
    store->maintain();
    const auto io2 = write_bytes();
    r.write_bytes_per_deleted = static_cast<double>(io2 - io1) / static_cast<double>(total);
    r.drained_file = file_bytes(path);
    r.drained_wal = file_bytes(path + "-wal");
    store->close();
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    std::string dir;
    if (argc > 1) {
        dir = argv[1];
    } else {
        char tmpl[] = "/var/tmp/hubgate-bench-XXXXXX";  // real disk: /tmp may be tmpfs elsewhere
        if (!mkdtemp(tmpl)) return 1;
        dir = tmpl;
    }
    const std::size_t total = argc > 2 ? std::stoul(argv[2]) : 20000;
    std::printf("store_bench: %zu messages of 200-byte bodies + 3 app properties, dir %s\n\n", total, dir.c_str());
    std::printf("%-8s %6s %12s %9s %14s %13s %13s %12s %12s %10s\n", "mode", "group", "appends/s", "vs g=1",
                "process/power", "wr B/stored", "wr B/deleted", "db full", "db drained", "wal after");
    std::map<std::size_t, double> power_rate;
    for (auto durability : {config::Durability::power, config::Durability::process}) {
        double g1 = 0;
        for (std::size_t group : {1, 10, 100, 1000}) {
            // Group 1 pays one commit per message: fewer messages keep the run short.
            const std::size_t n = group == 1 ? std::min<std::size_t>(total, 5000) : total;
            const Run r = run(dir, durability, group, n);
            if (group == 1) g1 = r.appends_per_s;
            const bool power = durability == config::Durability::power;
            if (power) power_rate[group] = r.appends_per_s;
            char ratio[32] = "-";
            if (!power) std::snprintf(ratio, sizeof ratio, "%.2f", r.appends_per_s / power_rate[group]);
            std::printf("%-8s %6zu %12.0f %8.1fx %14s %13.0f %13.0f %12llu %12llu %10llu\n",
                        power ? "power" : "process", group, r.appends_per_s, r.appends_per_s / g1, ratio,
                        r.write_bytes_per_stored, r.write_bytes_per_deleted,
                        static_cast<unsigned long long>(r.full_file), static_cast<unsigned long long>(r.drained_file),
                        static_cast<unsigned long long>(r.drained_wal));
            std::fflush(stdout);
        }
    }
    if (argc <= 1) fs::remove_all(dir);
    return 0;
}
