#include "gateway/model/message_id.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace hubgate;

namespace {
bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
}  // namespace

TEST_CASE("generated message ids are lowercase 8-4-4-4-12 UUID text") {
    MessageIdGenerator ids;
    const auto id = ids.next();
    REQUIRE(id.size() == 36);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            CHECK(id[i] == '-');
        else
            CHECK(is_lower_hex(id[i]));
    }
}

TEST_CASE("generated message ids are random (version 4, RFC 4122 variant) UUIDs") {
    MessageIdGenerator ids;
    const auto id = ids.next();
    CHECK(id[14] == '4');
    CHECK(std::string_view("89ab").find(id[19]) != std::string_view::npos);
}

TEST_CASE("10000 generated message ids are all distinct") {
    MessageIdGenerator ids;
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) seen.insert(ids.next());
    CHECK(seen.size() == 10000);
}

TEST_CASE("two generators do not produce the same ids") {
    MessageIdGenerator a;
    MessageIdGenerator b;
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        seen.insert(a.next());
        seen.insert(b.next());
    }
    CHECK(seen.size() == 200);
}
