// The D2C relay: reads the store's outbox oldest first, packs batches (or single messages), keeps
// a window of publishes in flight upstream, and deletes rows only after the hub's PUBACK for the
// publish that holds them. Runs on its own thread, which owns the store reader. Wired by gateway/app.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace hubgate {
namespace store {
class Store;
}
namespace upstream {
class UpstreamClient;
}
namespace metrics {
class Registry;
}
}  // namespace hubgate

namespace hubgate::relay {

struct RelayOptions {
    bool batch = true;
    std::uint32_t max_batch_bytes = 262144;
    // With a small backlog, a batch waits at most this long (from its oldest message's enqueue
    // time) for more messages; with a backlog, full batches go back to back.
    std::chrono::milliseconds max_batch_delay{50};
    std::size_t window = 8;              // publishes in flight (batch mode)
    std::size_t unbatched_window = 256;  // publishes in flight when each message goes alone
    std::size_t read_rows = 4096;        // rows per store read
};

class Relay {
public:
    Relay(store::Store& store, upstream::UpstreamClient& client, RelayOptions options, metrics::Registry& registry);
    ~Relay();  // stops
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Opens the store reader and starts the thread; hooks the store's commit listener and the
    // client's state listener. Returns false (and logs) if the reader cannot be opened.
    bool start();
    // Stops the thread. Publishes in flight are not waited for: their rows stay and are sent again
    // on the next start (at-least-once).
    void stop();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::relay
