// `hubgate check-config` as users run it: the real binary on real files.
#include <doctest/doctest.h>

#include <ctime>

#include "gateway/model/sas_token.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate::test;

TEST_CASE("check-config accepts the documented example config and prints a summary") {
    const auto r = run({HUBGATE_BINARY, "check-config", "-c", HUBGATE_SOURCE_DIR "/config/hubgate.toml"});
    CHECK(r.exit_code == 0);
    CHECK(r.output.find(": ok: ") != std::string::npos);
}

TEST_CASE("check-config rejects an unknown key with exit 2 and FILE:LINE: what") {
    TempDir dir;
    const auto path = dir.write("bad.toml",
                                "[gateway]\n"
                                "id = \"gw-01\"\n"
                                "colour = \"blue\"\n");
    const auto r = run({HUBGATE_BINARY, "check-config", "-c", path});
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(path + ":3: ") != std::string::npos);
    CHECK(r.output.find("colour") != std::string::npos);
}

TEST_CASE("check-config reports a TOML syntax error as one FILE:LINE line") {
    TempDir dir;
    const auto path = dir.write("broken.toml",
                                "[gateway]\n"
                                "id = \"gw-01\"\n"
                                "\n"
                                "[store\n");
    const auto r = run({HUBGATE_BINARY, "check-config", "-c", path});
    CHECK(r.exit_code == 2);
    CHECK(r.output.rfind(path + ":4: ", 0) == 0);
}

TEST_CASE("check-config reports a missing file with exit 2") {
    const auto r = run({HUBGATE_BINARY, "check-config", "-c", "/nonexistent/hubgate.toml"});
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("/nonexistent/hubgate.toml") != std::string::npos);
}

TEST_CASE("run refuses a broken config with exit 2 before starting anything") {
    TempDir dir;
    const auto path = dir.write("bad.toml", "[store]\non_full = \"maybe\"\n");
    const auto r = run({HUBGATE_BINARY, "run", "-c", path});
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(path + ":2: ") != std::string::npos);
}

TEST_CASE("sas-token prints a token signed with the configured device's key that verifies") {
    TempDir dir;
    const std::string key = "cGFzc3dvcmRwYXNzd29yZA==";
    const auto path = dir.write("h.toml",
                                "[upstream]\nprofile = \"mqtt\"\nurl = \"tcp://127.0.0.1:1883\"\n\n"
                                "[[device]]\nid = \"dev-9\"\nkey = \"" + key + "\"\n");
    const auto r = run({HUBGATE_BINARY, "sas-token", "-c", path, "dev-9", "--ttl", "600", "--host", "myhub"});
    REQUIRE(r.exit_code == 0);
    const std::string text = r.output.substr(0, r.output.find('\n'));
    auto token = hubgate::parse_sas_token(text);
    REQUIRE(token.ok());
    CHECK(token->sr == "myhub/devices/dev-9");
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    CHECK(hubgate::verify_sas_token(*token, key, now) == hubgate::SasCheck::ok);
    CHECK(token->se > now);
    CHECK(token->se <= now + 600);
    CHECK(hubgate::verify_sas_token(*token, "b3RoZXJrZXlvdGhlcmtleQ==", now) == hubgate::SasCheck::bad_signature);
}

TEST_CASE("sas-token for a device the config does not have fails with a reason") {
    const auto r = run({HUBGATE_BINARY, "sas-token", "-c", HUBGATE_SOURCE_DIR "/config/hubgate.toml", "nobody"});
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("no [[device]] with id 'nobody'") != std::string::npos);
}
