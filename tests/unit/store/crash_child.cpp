// Child process of crash_test.cpp: appends to a store forever in batches of random size and prints
// each message id ("c-<n>", one line, flushed) from the durable callback, until it is SIGKILLed.
// Usage: store_crash_child PATH power|process SEED
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

#include "store/store.hpp"

int main(int argc, char** argv) {
    using namespace hubgate;
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s PATH power|process SEED\n", argv[0]);
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    store::Options options;
    options.limits.path = argv[1];
    options.limits.durability = std::strcmp(argv[2], "power") == 0 ? config::Durability::power
                                                                   : config::Durability::process;
    metrics::Registry registry;
    auto opened = store::Store::open(options, registry);
    if (!opened) {
        std::fprintf(stderr, "open failed: %s\n", opened.error().c_str());
        return 1;
    }
    auto& store = **opened;

    std::mt19937 rng(static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)));
    std::uniform_int_distribution<int> batch_size(1, 20);
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0;
    constexpr int kWindow = 4;  // several appends queued, so commits group them as in the gateway
    for (std::uint64_t next = 0;;) {
        {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return in_flight < kWindow; });
            ++in_flight;
        }
        const int n = batch_size(rng);
        std::vector<HubMessage> batch;
        const std::uint64_t first = next;
        for (int i = 0; i < n; ++i) {
            HubMessage m;
            m.device_id = "crash-dev";
            m.system.message_id = "c-" + std::to_string(next++);
            m.body.assign(64 + (next % 200), 'x');
            m.properties.set("n", std::to_string(next));
            batch.push_back(std::move(m));
        }
        store.append(std::move(batch), [&, first](const store::AppendResult& r) {
            for (std::size_t i = 0; i < r.durable; ++i) {
                const std::string line = "c-" + std::to_string(first + i) + "\n";
                std::fwrite(line.data(), 1, line.size(), stdout);  // one write per line: never torn
                std::fflush(stdout);
            }
            std::lock_guard lock(mu);
            --in_flight;
            cv.notify_one();
        });
    }
}
