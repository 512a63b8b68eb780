// [pairing] and [[enrollment]] (docs/pairing.md): defaults, values, and FILE:LINE errors.
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
const std::string kGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

LoadResult load_text(const TempDir& dir, const std::string& text) { return load_config(dir.write("hubgate.toml", text)); }

// The single error's "FILE:LINE: what".
std::string only_error(const TempDir& dir, const LoadResult& r, int line) {
    REQUIRE_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 1);
    const std::string rendered = r.errors[0].to_string();
    CHECK_MESSAGE(rendered.rfind(dir.path() + "/hubgate.toml:" + std::to_string(line) + ": ", 0) == 0, rendered);
    return r.errors[0].what;
}

}  // namespace

TEST_CASE("without [pairing] or [[enrollment]] the window defaults to 600 s and there are no groups") {
    TempDir dir;
    const auto r = load_text(dir, kMinimal);
    REQUIRE(r.config.has_value());
    CHECK(r.config->pairing.window_seconds == 600);
    CHECK(r.config->enrollments.empty());
}

TEST_CASE("[pairing] and two [[enrollment]] groups load with their values and defaults") {
    TempDir dir;
    const auto r = load_text(dir, kMinimal + "[pairing]\nwindow_seconds = 90\n"
                                             "[[enrollment]]\nid = \"sensors\"\nkey = \"" + kGroupKey +
                                      "\"\nmodule_id = \"sens\"\n"
                                      "[[enrollment]]\nid = \"meters\"\nkey = \"" + kGroupKey +
                                      "\"\nregister = \"always\"\n");
    REQUIRE(r.config.has_value());
    CHECK(r.config->pairing.window_seconds == 90);
    REQUIRE(r.config->enrollments.size() == 2);
    CHECK(r.config->enrollments[0].id == "sensors");
    CHECK(r.config->enrollments[0].key == kGroupKey);
    CHECK(r.config->enrollments[0].module_id == "sens");
    CHECK(r.config->enrollments[0].register_mode == EnrollmentRegister::window);
    CHECK(r.config->enrollments[0].line == 7);
    CHECK(r.config->enrollments[1].module_id.empty());
    CHECK(r.config->enrollments[1].register_mode == EnrollmentRegister::always);
}

TEST_CASE("a window of 0 or over a day is refused at its line") {
    TempDir dir;
    for (const char* v : {"0", "86401"}) {
        const auto r = load_text(dir, kMinimal + "[pairing]\nwindow_seconds = " + v + "\n");
        CHECK(only_error(dir, r, 6).find("pairing.window_seconds = " + std::string(v) + " is out of range") == 0);
    }
}

TEST_CASE("an enrollment without id or key, or with a bad key, register or duplicate id, is refused at its line") {
    TempDir dir;
    CHECK(only_error(dir, load_text(dir, kMinimal + "[[enrollment]]\nkey = \"" + kGroupKey + "\"\n"), 5) ==
          "enrollment.id is required");
    CHECK(only_error(dir, load_text(dir, kMinimal + "[[enrollment]]\nid = \"e\"\n"), 5).rfind("enrollment.key is required", 0) == 0);
    CHECK(only_error(dir, load_text(dir, kMinimal + "[[enrollment]]\nid = \"e\"\nkey = \"not base64!\"\n"), 7)
              .rfind("enrollment.key is not valid base64", 0) == 0);
    CHECK(only_error(dir, load_text(dir, kMinimal + "[[enrollment]]\nid = \"e\"\nkey = \"c2hvcnQ=\"\n"), 7) ==
          "enrollment.key decodes to 5 bytes; at least 16 are required");
    CHECK(only_error(dir, load_text(dir, kMinimal + "[[enrollment]]\nid = \"e\"\nkey = \"" + kGroupKey +
                                             "\"\nregister = \"sometimes\"\n"),
                     8)
              .rfind("enrollment.register = \"sometimes\" is not allowed; allowed values: window, always", 0) == 0);
    const std::string group = "[[enrollment]]\nid = \"e\"\nkey = \"" + kGroupKey + "\"\n";
    CHECK(only_error(dir, load_text(dir, kMinimal + group + group), 9) ==
          "duplicate enrollment id \"e\": already defined at line 5");
    CHECK(only_error(dir, load_text(dir, kMinimal + group + "colour = \"red\"\n"), 8)
              .rfind("unknown key \"colour\" in [[enrollment]]", 0) == 0);
}
