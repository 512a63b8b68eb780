#include "tests/unit/store/store_test_support.hpp"

#include <doctest/doctest.h>

#include <future>

namespace hubgate::store::testing {

StoreFixture::StoreFixture() {
    options.limits.path = dir.file("store.db");
    options.now_ms = [this] { return clock_ms.load(); };
    // Commit at once, as these tests expect; the window has tests of its own (store_test.cpp).
    options.limits.commit_window_ms = 0;
}

std::unique_ptr<Store> StoreFixture::open() {
    auto s = Store::open(options, registry);
    if (!s) FAIL("store did not open: " << s.error());
    return std::move(s).value();
}

std::uint64_t StoreFixture::counter(const std::string& name, const metrics::Labels& labels) {
    return registry.counter(name, "", labels).value();
}

HubMessage make_message(const std::string& id, std::size_t body_bytes) {
    HubMessage m;
    m.body.assign(body_bytes, 'b');
    m.system.message_id = id;
    m.device_id = "dev-1";
    m.module_id = "mod";
    return m;
}

std::vector<HubMessage> make_messages(const std::string& prefix, int first, int count, std::size_t body_bytes) {
    std::vector<HubMessage> out;
    for (int i = first; i < first + count; ++i) out.push_back(make_message(prefix + std::to_string(i), body_bytes));
    return out;
}

AppendResult append_sync(Store& store, std::vector<HubMessage> messages) {
    std::promise<AppendResult> p;
    auto f = p.get_future();
    store.append(std::move(messages), [&p](const AppendResult& r) { p.set_value(r); });
    return f.get();
}

std::vector<StoredMessage> read_all(Store& store) {
    auto reader = store.open_reader();
    if (!reader) FAIL("reader did not open: " << reader.error());
    std::vector<StoredMessage> out;
    auto e = (*reader)->read(0, SIZE_MAX, SIZE_MAX, out);
    if (e) FAIL("read failed: " << e->reason);
    return out;
}

std::vector<std::string> message_ids(const std::vector<StoredMessage>& messages) {
    std::vector<std::string> ids;
    for (const auto& m : messages) ids.push_back(m.message.system.message_id);
    return ids;
}

}  // namespace hubgate::store::testing
