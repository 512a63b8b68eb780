// [discovery] (docs/discovery.md): defaults, values, and FILE:LINE errors.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate::config;
using hubgate::test::TempDir;

namespace {

const std::string kMinimal =
    "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\nconnection_string = "
    "\"HostName=hub.example.net;DeviceId=gw-up;SharedAccessKey=aHViZ2F0ZS1leGFtcGxlLWtleS1ub3QtYS1zZWNyZXQ=\"\n";

LoadResult load_text(const TempDir& dir, const std::string& text) { return load_config(dir.write("hubgate.toml", text)); }

// The single error's "FILE:LINE: what" (line 6: the first line after kMinimal and "[discovery]").
std::string only_error(const TempDir& dir, const LoadResult& r, int line) {
    REQUIRE_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 1);
    const std::string rendered = r.errors[0].to_string();
    CHECK_MESSAGE(rendered.rfind(dir.path() + "/hubgate.toml:" + std::to_string(line) + ": ", 0) == 0, rendered);
    return r.errors[0].what;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("without [discovery] mDNS is on and the instance is hubgate {gateway}") {
    TempDir dir;
    const auto r = load_text(dir, kMinimal);
    REQUIRE(r.config.has_value());
    CHECK(r.config->discovery.mdns);
    CHECK(r.config->discovery.instance == "hubgate {gateway}");
}

TEST_CASE("[discovery] mdns and instance load, UTF-8 included") {
    TempDir dir;
    const auto r = load_text(dir, kMinimal + "[discovery]\nmdns = false\ninstance = \"Küche {gateway}\"\n");
    REQUIRE(r.config.has_value());
    CHECK_FALSE(r.config->discovery.mdns);
    CHECK(r.config->discovery.instance == "Küche {gateway}");
}

TEST_CASE("discovery.mdns must be a boolean") {
    TempDir dir;
    CHECK(contains(only_error(dir, load_text(dir, kMinimal + "[discovery]\nmdns = \"yes\"\n"), 6),
                   "discovery.mdns must be a boolean"));
}

TEST_CASE("an empty instance name is refused at its line") {
    TempDir dir;
    CHECK(contains(only_error(dir, load_text(dir, kMinimal + "[discovery]\ninstance = \"  \"\n"), 6),
                   "must not be empty"));
}

TEST_CASE("a placeholder other than {gateway} is refused") {
    TempDir dir;
    const auto what = only_error(dir, load_text(dir, kMinimal + "[discovery]\ninstance = \"hubgate {gw}\"\n"), 6);
    CHECK(contains(what, "discovery.instance = \"hubgate {gw}\""));
    CHECK(contains(what, "{gateway} (the only placeholder)"));
}

TEST_CASE("a control character in the instance name is refused") {
    TempDir dir;
    CHECK(contains(only_error(dir, load_text(dir, kMinimal + "[discovery]\ninstance = \"hub\\tgate\"\n"), 6),
                   "control character"));
}

TEST_CASE("an instance name over 63 bytes of its own text is refused but {gateway} does not count") {
    TempDir dir;
    const std::string ok = std::string(63, 'x') + "{gateway}";
    CHECK(load_text(dir, kMinimal + "[discovery]\ninstance = \"" + ok + "\"\n").config.has_value());
    // 32 two-byte characters: 64 bytes
    std::string long_utf8;
    for (int i = 0; i < 32; ++i) long_utf8 += "ü";
    CHECK(contains(only_error(dir, load_text(dir, kMinimal + "[discovery]\ninstance = \"" + long_utf8 + "\"\n"), 6),
                   "longer than 63 bytes"));
}

TEST_CASE("an unknown key in [discovery] lists the allowed ones") {
    TempDir dir;
    CHECK(contains(only_error(dir, load_text(dir, kMinimal + "[discovery]\nenabled = true\n"), 6),
                   "allowed keys: mdns, instance"));
}
