// [upstream] url as a list (a broker cluster's nodes) and percent_encode_dots (RabbitMQ): DESIGN.md
// "Upstream clusters and flapping hubs", docs/upstream.md.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate::config;
using hubgate::test::TempDir;

namespace {

const std::string kHead = "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\nprofile = \"mqtt\"\n";  // 4 lines

LoadResult load(const TempDir& dir, const std::string& text) { return load_config(dir.write("hubgate.toml", text)); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("upstream.url takes a list: every node in order, url is the first") {
    TempDir dir;
    const auto r = load(dir, kHead + "url = [\"tcp://10.0.0.1:1883\", \"ssl://[::1]:8883\", \"tcp://n3.local:1884\"]\n");
    REQUIRE(r.config.has_value());
    CHECK(r.config->upstream.urls == std::vector<std::string>{"tcp://10.0.0.1:1883", "ssl://[::1]:8883", "tcp://n3.local:1884"});
    CHECK(r.config->upstream.url == "tcp://10.0.0.1:1883");
    CHECK_FALSE(r.config->upstream.percent_encode_dots);
}

TEST_CASE("a single url string is a list of one") {
    TempDir dir;
    const auto r = load(dir, kHead + "url = \"tcp://127.0.0.1:1883\"\n");
    REQUIRE(r.config.has_value());
    CHECK(r.config->upstream.urls == std::vector<std::string>{"tcp://127.0.0.1:1883"});
}

TEST_CASE("every entry of a url list is checked, each error at its own line") {
    TempDir dir;
    const auto r = load(dir, kHead +
                                 "url = [\n"
                                 "  \"tcp://127.0.0.1:1883\",\n"  // line 6
                                 "  \"mqtt://127.0.0.1:1883\",\n"  // line 7: scheme
                                 "  \"tcp://127.0.0.1\",\n"        // line 8: no port
                                 "  \"tcp://127.0.0.1:1883\",\n"  // line 9: twice
                                 "  7,\n"                           // line 10: not a string
                                 "]\n");
    REQUIRE_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 4);  // in line order
    CHECK(r.errors[0].line == 7);
    CHECK(contains(r.errors[0].what, "must start with tcp:// or ssl://"));
    CHECK(r.errors[1].line == 8);
    CHECK(contains(r.errors[1].what, "tcp://127.0.0.1"));
    CHECK(r.errors[2].line == 9);
    CHECK(contains(r.errors[2].what, "twice"));
    CHECK(r.errors[3].line == 10);
    CHECK(contains(r.errors[3].what, "entries must be strings"));
}

TEST_CASE("an empty url list, or a url that is neither string nor list, is refused") {
    TempDir dir;
    for (const char* bad : {"url = []\n", "url = 1883\n"}) {
        CAPTURE(bad);
        const auto r = load(dir, kHead + bad);
        REQUIRE_FALSE(r.config.has_value());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].line == 5);
        CHECK(contains(r.errors[0].what, "upstream.url"));
    }
}

TEST_CASE("percent_encode_dots: mqtt profile only, and gateway.id must hold no dot") {
    TempDir dir;
    {
        const auto r = load(dir, kHead + "url = \"tcp://127.0.0.1:1883\"\npercent_encode_dots = true\n");
        REQUIRE(r.config.has_value());
        CHECK(r.config->upstream.percent_encode_dots);
    }
    {
        const auto r = load(dir, "[gateway]\nid = \"site.gw\"\n" + kHead +
                                     "url = \"tcp://127.0.0.1:1883\"\npercent_encode_dots = true\n");
        REQUIRE_FALSE(r.config.has_value());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].line == 8);
        CHECK(contains(r.errors[0].what, "gateway.id"));
    }
    {
        const auto r = load(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\n"
                                 "connection_string = \"HostName=h.example.net;DeviceId=gw;SharedAccessKey=aGk=\"\n"
                                 "percent_encode_dots = true\n");
        REQUIRE_FALSE(r.config.has_value());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].line == 5);
        CHECK(contains(r.errors[0].what, "only used by profile mqtt"));
    }
}
