#include "gateway/model/url_encoding.hpp"

#include <doctest/doctest.h>

using namespace hubgate;

TEST_CASE("url_encode keeps RFC 3986 unreserved characters as they are") {
    const std::string unreserved = "ABCXYZabcxyz0189-._~";
    CHECK(url_encode(unreserved) == unreserved);
}

TEST_CASE("url_encode escapes every other byte as %XX with upper-case hex") {
    CHECK(url_encode("a/b") == "a%2Fb");
    CHECK(url_encode("$.ct") == "%24.ct");
    CHECK(url_encode("application/json") == "application%2Fjson");
    CHECK(url_encode(" +&=%") == "%20%2B%26%3D%25");
    CHECK(url_encode(std::string("\x00\xff\x7f", 3)) == "%00%FF%7F");
}

TEST_CASE("url_encode_to appends to what the buffer already holds") {
    std::string out = "devices/d/messages/events/";
    url_encode_to(out, "a b");
    CHECK(out == "devices/d/messages/events/a%20b");
}

TEST_CASE("url_decode turns upper- and lower-case escapes back into bytes") {
    CHECK(url_decode("application%2Fjson").value() == "application/json");
    CHECK(url_decode("application%2fjson").value() == "application/json");
    CHECK(url_decode("%00%FF").value() == std::string("\x00\xff", 2));
}

TEST_CASE("url_decode keeps '+' as '+' rather than a space") {
    CHECK(url_decode("a+b").value() == "a+b");
}

TEST_CASE("url_decode refuses a '%' without two hex digits and names the position") {
    const auto lone = url_decode("ab%");
    REQUIRE_FALSE(lone.ok());
    CHECK(lone.error().find("position 2") != std::string::npos);

    const auto one_digit = url_decode("%4");
    REQUIRE_FALSE(one_digit.ok());
    CHECK(one_digit.error().find("position 0") != std::string::npos);

    const auto not_hex = url_decode("x%zz");
    REQUIRE_FALSE(not_hex.ok());
    CHECK(not_hex.error().find("position 1") != std::string::npos);
}

TEST_CASE("url_decode inverts url_encode for every byte value") {
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    CHECK(url_decode(url_encode(all)).value() == all);
}
