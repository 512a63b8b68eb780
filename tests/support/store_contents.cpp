#include "tests/support/store_contents.hpp"

#include <doctest/doctest.h>

#include "gateway/metrics/registry.hpp"
#include "store/store.hpp"

namespace hubgate::test {

std::vector<HubMessage> stored_messages(const std::string& db_path) {
    metrics::Registry registry;
    store::Options opts;
    opts.limits.path = db_path;
    opts.limits.durability = config::Durability::process;
    auto st = store::Store::open(std::move(opts), registry);
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error()));
    auto reader = st.value()->open_reader();
    REQUIRE(reader.ok());
    std::vector<HubMessage> out;
    std::vector<store::StoredMessage> chunk;
    std::int64_t after = 0;
    for (;;) {
        REQUIRE_FALSE(reader.value()->read(after, 8u << 20, 10000, chunk).has_value());
        if (chunk.empty()) break;
        for (auto& m : chunk) out.push_back(std::move(m.message));
        after = chunk.back().seq;
    }
    return out;
}

std::map<std::string, int> count_by_message_id(const std::vector<HubMessage>& messages) {
    std::map<std::string, int> counts;
    for (const auto& m : messages) ++counts[m.system.message_id];
    return counts;
}

const HubMessage* find_by_message_id(const std::vector<HubMessage>& messages, std::string_view message_id) {
    for (const auto& m : messages)
        if (m.system.message_id == message_id) return &m;
    return nullptr;
}

std::string describe(const HubMessage& m) {
    static const char* hex = "0123456789abcdef";
    std::string out = "{device " + m.device_id + ", module " + m.module_id + ", mid " + m.system.message_id +
                      ", cid " + m.system.correlation_id + ", uid " + m.system.user_id + ", ct " +
                      m.system.content_type + ", ce " + m.system.content_encoding + ", ctime " +
                      m.system.creation_time + ", exp " + m.system.absolute_expiry_time + ", props [";
    for (const auto& p : m.properties) out += p.name + (p.value ? "=" + *p.value : "") + ";";
    out += "], body " + std::to_string(m.body.size()) + " bytes ";
    for (std::size_t i = 0; i < m.body.size() && i < 64; ++i) {
        const auto c = static_cast<unsigned char>(m.body[i]);
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    if (m.body.size() > 64) out += "...";
    return out + "}";
}

}  // namespace hubgate::test
