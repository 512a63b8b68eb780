#include "gateway/model/hub_message.hpp"

#include <doctest/doctest.h>

using namespace hubgate;

TEST_CASE("hub_size counts body, system property values and application property names and values") {
    HubMessage m;
    m.body = "12345";                 // 5
    m.system.message_id = "mid";      // 3
    m.system.correlation_id = "c";    // 1
    m.system.user_id = "u";           // 1
    m.system.content_type = "ct";     // 2
    m.system.content_encoding = "ce"; // 2
    m.system.creation_time = "t1";    // 2
    m.system.absolute_expiry_time = "t22";  // 3
    m.system.to = "to";               // 2
    m.properties.set("name", "value");      // 4 + 5
    m.properties.set("bare", std::nullopt); // 4
    m.device_id = "not-counted";
    m.module_id = "not-counted-either";
    CHECK(hub_size(m) == 5 + 3 + 1 + 1 + 2 + 2 + 2 + 3 + 2 + 9 + 4);
}

TEST_CASE("AppProperties::set keeps arrival order and replaces an existing name's value") {
    AppProperties p;
    p.set("b", "1");
    p.set("a", "2");
    p.set("b", "3");
    REQUIRE(p.size() == 2);
    auto it = p.begin();
    CHECK(it->name == "b");
    CHECK(it->value == "3");
    ++it;
    CHECK(it->name == "a");
}

TEST_CASE("AppProperties names are case-sensitive") {
    AppProperties p;
    p.set("Key", "1");
    p.set("key", "2");
    CHECK(p.size() == 2);
    CHECK(p.find("KEY") == nullptr);
}

TEST_CASE("AppProperties keep a null value apart from an empty one") {
    AppProperties p;
    p.set("null", std::nullopt);
    p.set("empty", std::string{});
    REQUIRE(p.find("null") != nullptr);
    REQUIRE(p.find("empty") != nullptr);
    CHECK_FALSE(p.find("null")->value.has_value());
    CHECK(p.find("empty")->value == std::string{});
}

TEST_CASE("AppProperties::erase returns the removed value, or nothing when absent") {
    AppProperties p;
    p.set("a", "1");
    p.set("n", std::nullopt);
    const auto a = p.erase("a");
    REQUIRE(a.has_value());
    CHECK(*a == std::optional<std::string>("1"));
    const auto n = p.erase("n");
    REQUIRE(n.has_value());
    CHECK_FALSE(n->has_value());
    CHECK_FALSE(p.erase("missing").has_value());
    CHECK(p.empty());
}
