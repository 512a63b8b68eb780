// Helpers shared by the store tests: a store in a scratch directory with an injected clock,
// synchronous append, and reading the whole outbox back.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "store/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace hubgate::store::testing {

inline constexpr std::int64_t kStartMs = 1'700'000'000'000;

struct StoreFixture {
    test::TempDir dir;
    metrics::Registry registry;
    std::atomic<std::int64_t> clock_ms{kStartMs};
    Options options;

    StoreFixture();
    std::unique_ptr<Store> open();  // fails the test if the store does not open
    std::uint64_t counter(const std::string& name, const metrics::Labels& labels = {});
};

// A message "id" from device "dev-1", module "mod", with a body of `body_bytes` bytes.
HubMessage make_message(const std::string& id, std::size_t body_bytes = 10);
std::vector<HubMessage> make_messages(const std::string& prefix, int first, int count, std::size_t body_bytes = 10);
AppendResult append_sync(Store& store, std::vector<HubMessage> messages);
std::vector<StoredMessage> read_all(Store& store);
std::vector<std::string> message_ids(const std::vector<StoredMessage>& messages);

}  // namespace hubgate::store::testing
