#include "gateway/model/crypto.hpp"

#include <doctest/doctest.h>

using namespace hubgate;

namespace {
std::string hex(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0x0F]);
    }
    return out;
}
}  // namespace

TEST_CASE("base64_encode matches the RFC 4648 test vectors") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_encode("fooba") == "Zm9vYmE=");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64_decode matches the RFC 4648 test vectors, padding bytes stripped") {
    CHECK(base64_decode("").value() == "");
    CHECK(base64_decode("Zg==").value() == "f");
    CHECK(base64_decode("Zm8=").value() == "fo");
    CHECK(base64_decode("Zm9v").value() == "foo");
    CHECK(base64_decode("Zm9vYg==").value() == "foob");
    CHECK(base64_decode("Zm9vYmE=").value() == "fooba");
    CHECK(base64_decode("Zm9vYmFy").value() == "foobar");
}

TEST_CASE("base64_decode round-trips bytes that end in zeros") {
    const std::string bytes("\x01\x00\x00\xff\x00", 5);
    CHECK(base64_decode(base64_encode(bytes)).value() == bytes);
}

TEST_CASE("base64_decode refuses bad length, bad characters, whitespace and misplaced padding") {
    CHECK_FALSE(base64_decode("Zm9").ok());
    CHECK_FALSE(base64_decode("Zm9v!A==").ok());
    CHECK_FALSE(base64_decode("Zm9v Zm8").ok());
    CHECK_FALSE(base64_decode("Zm9vYg==\n").ok());
    CHECK_FALSE(base64_decode("Zg=v").ok());
    CHECK_FALSE(base64_decode("Z===").ok());
}

TEST_CASE("hmac_sha256 matches RFC 4231 test case 2") {
    CHECK(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("hmac_sha256 accepts an empty key") {
    CHECK(hex(hmac_sha256("", "")) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("constant_time_equal is true only for identical bytes of equal length") {
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "abcd"));
    CHECK(constant_time_equal("", ""));
}
