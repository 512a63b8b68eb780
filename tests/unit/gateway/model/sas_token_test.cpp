#include "gateway/model/sas_token.hpp"

#include <doctest/doctest.h>

#include "gateway/model/crypto.hpp"
#include "gateway/model/url_encoding.hpp"

using namespace hubgate;

namespace {
constexpr std::string_view kKey = "+XLy+MVZ+aTeOnVzN2kLeB16O+kSxmz6g3rS6fAf6rw=";
constexpr std::string_view kUri = "iot-hub-for-test.azure-devices.net/devices/iot-device-for-test";
constexpr std::int64_t kExpiry = 1471940363;
}  // namespace

TEST_CASE("make_sas_token matches the published IoT Hub vector (sr URL-encoded, sig base64 then URL-encoded)") {
    const auto token = make_sas_token(kUri, kKey, kExpiry);
    REQUIRE(token.ok());
    CHECK(*token ==
          "SharedAccessSignature sr=iot-hub-for-test.azure-devices.net%2Fdevices%2Fiot-device-for-test"
          "&sig=SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4%3D&se=1471940363");
}

TEST_CASE("make_sas_token matches the published 'password' key vector") {
    const auto token = make_sas_token("uri", "cGFzc3dvcmQ=", 12345);
    REQUIRE(token.ok());
    CHECK(*token == "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345");
}

TEST_CASE("make_sas_token appends skn when a key name is given") {
    const auto token = make_sas_token("uri", "cGFzc3dvcmQ=", 12345, "iothubowner");
    REQUIRE(token.ok());
    CHECK(token->ends_with("&se=12345&skn=iothubowner"));
}

TEST_CASE("make_sas_token refuses a key that is not base64") {
    const auto token = make_sas_token("uri", "not base64!", 12345);
    REQUIRE_FALSE(token.ok());
    CHECK(token.error().find("base64") != std::string::npos);
}

TEST_CASE("derive_device_key matches the published group enrollment vector") {
    const auto key = derive_device_key(
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
        "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
    REQUIRE(key.ok());
    CHECK(*key == "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
}

TEST_CASE("derive_device_key refuses a group key that is not base64") {
    CHECK_FALSE(derive_device_key("%%%%", "dev").ok());
}

TEST_CASE("parse_sas_token reads sr (raw and decoded), sig as sent, se and skn, in any order") {
    const auto t = parse_sas_token("SharedAccessSignature skn=my%20key&se=1471940363&sig=abc%3D&sr=h%2Fdevices%2Fd");
    REQUIRE(t.ok());
    CHECK(t->sr_raw == "h%2Fdevices%2Fd");
    CHECK(t->sr == "h/devices/d");
    CHECK(t->sig_raw == "abc%3D");
    CHECK(t->se == 1471940363);
    CHECK(t->skn == "my key");
}

TEST_CASE("parse_sas_token refuses a token without the SharedAccessSignature prefix") {
    for (const char* text : {"sr=uri&sig=x&se=1", "SharedAccessSignaturesr=uri&sig=x&se=1", "Bearer sr=uri&sig=x&se=1"}) {
        CAPTURE(text);
        const auto t = parse_sas_token(text);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().find("SharedAccessSignature") != std::string::npos);
    }
}

TEST_CASE("parse_sas_token refuses a token missing sr, sig or se, naming the field") {
    const auto no_sr = parse_sas_token("SharedAccessSignature sig=x&se=1");
    REQUIRE_FALSE(no_sr.ok());
    CHECK(no_sr.error().find("no sr") != std::string::npos);
    const auto no_sig = parse_sas_token("SharedAccessSignature sr=uri&se=1");
    REQUIRE_FALSE(no_sig.ok());
    CHECK(no_sig.error().find("no sig") != std::string::npos);
    const auto no_se = parse_sas_token("SharedAccessSignature sr=uri&sig=x");
    REQUIRE_FALSE(no_se.ok());
    CHECK(no_se.error().find("no se") != std::string::npos);
}

TEST_CASE("parse_sas_token refuses a non-numeric se") {
    for (const char* se : {"abc", "12a", "-5", "", "1.5", "99999999999999999999999"}) {
        CAPTURE(se);
        const auto t = parse_sas_token(std::string("SharedAccessSignature sr=uri&sig=x&se=") + se);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().find("se") != std::string::npos);
    }
}

TEST_CASE("parse_sas_token refuses duplicate fields") {
    for (const char* text : {"SharedAccessSignature sr=a&sr=b&sig=x&se=1", "SharedAccessSignature sr=a&sig=x&sig=y&se=1",
                             "SharedAccessSignature sr=a&sig=x&se=1&se=2", "SharedAccessSignature sr=a&sig=x&se=1&skn=k&skn=k"}) {
        CAPTURE(text);
        const auto t = parse_sas_token(text);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().find("more than one") != std::string::npos);
    }
}

TEST_CASE("parse_sas_token refuses a field without '=' and a malformed escape in sr") {
    CHECK_FALSE(parse_sas_token("SharedAccessSignature sr=a&sig&se=1").ok());
    const auto bad_sr = parse_sas_token("SharedAccessSignature sr=a%2&sig=x&se=1");
    REQUIRE_FALSE(bad_sr.ok());
    CHECK(bad_sr.error().find("position") != std::string::npos);
}

TEST_CASE("a token made by make_sas_token verifies before its expiry") {
    const auto text = make_sas_token(kUri, kKey, kExpiry);
    REQUIRE(text.ok());
    const auto t = parse_sas_token(*text);
    REQUIRE(t.ok());
    CHECK(t->sr == kUri);
    CHECK(verify_sas_token(*t, kKey, kExpiry - 1) == SasCheck::ok);
}

TEST_CASE("a token is expired once now reaches se") {
    const auto t = parse_sas_token(make_sas_token(kUri, kKey, kExpiry).value());
    REQUIRE(t.ok());
    CHECK(verify_sas_token(*t, kKey, kExpiry) == SasCheck::expired);
    CHECK(verify_sas_token(*t, kKey, kExpiry + 3600) == SasCheck::expired);
}

TEST_CASE("a token signed with another key has a bad signature") {
    const auto t = parse_sas_token(make_sas_token(kUri, "cGFzc3dvcmQ=", kExpiry).value());
    REQUIRE(t.ok());
    CHECK(verify_sas_token(*t, kKey, kExpiry - 1) == SasCheck::bad_signature);
}

TEST_CASE("a token with a tampered sr has a bad signature") {
    auto t = parse_sas_token(make_sas_token(kUri, kKey, kExpiry).value());
    REQUIRE(t.ok());
    t->sr_raw = "iot-hub-for-test.azure-devices.net%2Fdevices%2Fother-device";
    CHECK(verify_sas_token(*t, kKey, kExpiry - 1) == SasCheck::bad_signature);
}

TEST_CASE("a token with a tampered se has a bad signature") {
    auto t = parse_sas_token(make_sas_token(kUri, kKey, kExpiry).value());
    REQUIRE(t.ok());
    t->se = kExpiry + 86400;
    CHECK(verify_sas_token(*t, kKey, kExpiry - 1) == SasCheck::bad_signature);
}

TEST_CASE("a garbled signature is a bad signature, not a crash") {
    for (const char* sig : {"", "%zz", "not-base64", "AAAA"}) {
        CAPTURE(sig);
        SasToken t;
        t.sr_raw = "uri";
        t.sr = "uri";
        t.sig_raw = sig;
        t.se = kExpiry;
        CHECK(verify_sas_token(t, kKey, 0) == SasCheck::bad_signature);
    }
}

TEST_CASE("a signature whose %3d escape is lower-case verifies like %3D") {
    auto t = parse_sas_token(make_sas_token("uri", "cGFzc3dvcmQ=", 12345).value()).value();
    t.sig_raw = "kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3d";
    CHECK(verify_sas_token(t, "cGFzc3dvcmQ=", 100) == SasCheck::ok);
}

TEST_CASE("the signature is checked over sr exactly as sent, not over a re-encoded sr") {
    // An SDK that escapes with lower-case hex signs "h%2fdevices%2fd"; re-encoding would give %2F.
    const std::string key = "password";
    const std::string sr_raw = "h%2fdevices%2fd";
    const auto sig = url_encode(base64_encode(hmac_sha256(key, sr_raw + "\n12345")));
    const auto t = parse_sas_token("SharedAccessSignature sr=" + sr_raw + "&sig=" + sig + "&se=12345");
    REQUIRE(t.ok());
    CHECK(t->sr == "h/devices/d");
    CHECK(verify_sas_token(*t, "cGFzc3dvcmQ=", 100) == SasCheck::ok);
}

TEST_CASE("a bad signature is reported even when the token is also expired") {
    const auto t = parse_sas_token(make_sas_token(kUri, "cGFzc3dvcmQ=", kExpiry).value());
    REQUIRE(t.ok());
    CHECK(verify_sas_token(*t, kKey, kExpiry + 10) == SasCheck::bad_signature);
}
