// Rule patterns and the segment tree (gateway/translate/pattern.hpp): what a pattern may be, and
// which rules a topic matches, in file order, with which captures.
#include "gateway/translate/pattern.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

using namespace hubgate::translate;

namespace {

Pattern parsed(std::string_view text, PatternSyntax syntax = PatternSyntax::mqtt_topic) {
    Pattern p;
    std::string why;
    INFO(text);
    REQUIRE(parse_pattern(text, syntax, p, why));
    return p;
}

std::string refusal(std::string_view text, PatternSyntax syntax = PatternSyntax::mqtt_topic) {
    Pattern p;
    std::string why;
    INFO(text);
    CHECK_FALSE(parse_pattern(text, syntax, p, why));
    CHECK_FALSE(why.empty());
    return why;
}

// One matching rule as the tests read it: its number and its capture values.
struct Hit {
    std::uint32_t rule;
    std::vector<std::string> captures;
    bool operator==(const Hit&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Hit& h) {
    os << "rule " << h.rule << " [";
    for (const auto& c : h.captures) os << "'" << c << "' ";
    return os << "]";
}

class Tree {
public:
    explicit Tree(std::vector<std::string> patterns, PatternSyntax syntax = PatternSyntax::mqtt_topic)
        : tree_(syntax) {
        for (std::size_t i = 0; i < patterns.size(); ++i) tree_.add(parsed(patterns[i], syntax), static_cast<std::uint32_t>(i));
    }
    std::vector<Hit> match(std::string_view topic) {
        tree_.match(topic, scratch_);
        std::vector<Hit> hits;
        for (const auto& m : scratch_.matches) {
            Hit h{m.rule, {}};
            for (std::uint32_t k = 0; k < m.capture_count; ++k)
                h.captures.emplace_back(scratch_.captures[m.first_capture + k].in(topic));
            hits.push_back(std::move(h));
        }
        return hits;
    }

private:
    PatternTree tree_;
    PatternTree::Scratch scratch_;
};

using Hits = std::vector<Hit>;

std::ostream& operator<<(std::ostream& os, const Hits& hits) {
    for (const auto& h : hits) os << h << "; ";
    return os;
}

}  // namespace

// --- parsing ----------------------------------------------------------------------------------------

TEST_CASE("a pattern's captures are listed by name in pattern order") {
    const auto p = parsed("shellies/{device}/relay/{n}");
    CHECK(p.captures == std::vector<std::string>{"device", "n"});
    REQUIRE(p.segments.size() == 4);
    CHECK(p.segments[0].kind == PatternSegment::Kind::literal);
    CHECK(p.segments[1].kind == PatternSegment::Kind::capture);
    CHECK(p.capture_index("n") == 1);
    CHECK(p.capture_index("relay") == -1);
}

TEST_CASE("a final {name*} is a rest capture") {
    const auto p = parsed("zigbee2mqtt/{rest*}");
    CHECK(p.captures == std::vector<std::string>{"rest"});
    CHECK(p.segments.back().kind == PatternSegment::Kind::rest);
}

TEST_CASE("'$' is allowed in literal segments, as Homie's attributes use it") {
    const auto p = parsed("homie/{device}/$state");
    CHECK(p.segments[2].kind == PatternSegment::Kind::literal);
    CHECK(p.segments[2].text == "$state");
}

TEST_CASE("MQTT wildcards in a pattern are refused with a pointer to captures") {
    CHECK(refusal("tele/+/SENSOR").find("{name}") != std::string::npos);
    CHECK(refusal("tele/#").find("MQTT wildcards") != std::string::npos);
    refusal("tele/a+b/SENSOR");
}

TEST_CASE("a capture that is not a whole segment is refused") {
    CHECK(refusal("tele/dev-{id}/SENSOR").find("whole segment") != std::string::npos);
    refusal("tele/{id}x/SENSOR");
    refusal("tele/{}/SENSOR");
    refusal("tele/{a}{b}/SENSOR");
    refusal("tele/{device/SENSOR");
}

TEST_CASE("a {name*} capture anywhere but last is refused") {
    CHECK(refusal("x/{rest*}/y").find("last segment") != std::string::npos);
}

TEST_CASE("capture names are ASCII letters, digits and '_'") {
    parsed("homie/{device}/{node_1}/{prop_name}");
    CHECK(refusal("tele/{dev-ice}/SENSOR").find("letters, digits and '_'") != std::string::npos);
    refusal("tele/{dev ice}/SENSOR");
    refusal("tele/{*}");
}

TEST_CASE("gateway, client and prop are reserved capture names") {
    CHECK(refusal("tele/{gateway}/SENSOR").find("reserved") != std::string::npos);
    refusal("tele/{client}/SENSOR");
    refusal("x/{prop*}");
}

TEST_CASE("a capture name used twice in one pattern is refused") {
    CHECK(refusal("a/{x}/b/{x}").find("used twice") != std::string::npos);
}

TEST_CASE("an empty topic pattern is refused") { refusal(""); }

TEST_CASE("a CoAP path pattern starts with '/'") {
    CHECK(refusal("sensors/{device}", PatternSyntax::coap_path).find("starts with '/'") != std::string::npos);
    const auto p = parsed("/sensors/{device}", PatternSyntax::coap_path);
    REQUIRE(p.segments.size() == 2);
    CHECK(p.segments[0].text == "sensors");
}

// --- matching ---------------------------------------------------------------------------------------

TEST_CASE("a literal pattern matches only the same topic") {
    Tree t({"tele/kitchen/SENSOR"});
    CHECK(t.match("tele/kitchen/SENSOR") == Hits{{0, {}}});
    CHECK(t.match("tele/kitchen/STATE").empty());
    CHECK(t.match("tele/kitchen").empty());
    CHECK(t.match("tele/kitchen/SENSOR/x").empty());
    CHECK(t.match("Tele/kitchen/SENSOR").empty());  // case-sensitive, as MQTT topics are
}

TEST_CASE("a {name} capture takes exactly one level") {
    Tree t({"tele/{device}/SENSOR"});
    CHECK(t.match("tele/tasmota_5A1B2C/SENSOR") == Hits{{0, {"tasmota_5A1B2C"}}});
    CHECK(t.match("tele/a/b/SENSOR").empty());
    CHECK(t.match("tele/SENSOR").empty());
}

TEST_CASE("a {name} capture does not match an empty level") {
    Tree t({"tele/{device}/SENSOR"});
    CHECK(t.match("tele//SENSOR").empty());
}

TEST_CASE("an empty literal level matches an empty topic level (a leading '/')") {
    Tree t({"/home/{device}"});
    CHECK(t.match("/home/t1") == Hits{{0, {"t1"}}});
    CHECK(t.match("home/t1").empty());
}

TEST_CASE("several captures are collected in pattern order") {
    Tree t({"homie/{device}/{node}/{prop_name}"});
    CHECK(t.match("homie/weather-1/sensor/temperature") == Hits{{0, {"weather-1", "sensor", "temperature"}}});
}

TEST_CASE("a final {name*} matches zero levels with an empty value") {
    Tree t({"zigbee2mqtt/{rest*}"});
    CHECK(t.match("zigbee2mqtt") == Hits{{0, {""}}});
}

TEST_CASE("a final {name*} matches one or more levels, joined as they were") {
    Tree t({"zigbee2mqtt/{rest*}"});
    CHECK(t.match("zigbee2mqtt/kitchen_sensor") == Hits{{0, {"kitchen_sensor"}}});
    CHECK(t.match("zigbee2mqtt/bridge/state") == Hits{{0, {"bridge/state"}}});
    CHECK(t.match("zigbee2mqtt/a//b/") == Hits{{0, {"a//b/"}}});
    CHECK(t.match("zigbee2mqttx/a").empty());
}

TEST_CASE("a pattern may start with a capture") {
    Tree t({"{device}/status"});
    CHECK(t.match("plug-7/status") == Hits{{0, {"plug-7"}}});
    CHECK(t.match("status").empty());
}

TEST_CASE("ESPHome's {prefix}/sensor/{name}/state takes the prefix and the sensor name") {
    Tree t({"{prefix}/sensor/{name}/state"});
    CHECK(t.match("livingroom/sensor/temperature/state") == Hits{{0, {"livingroom", "temperature"}}});
    CHECK(t.match("livingroom/binary_sensor/door/state").empty());
}

TEST_CASE("MQTT: a first level starting with '$' is matched only by a literal") {
    Tree t({"{device}/status", "{rest*}", "$devices/{device}/status"});
    CHECK(t.match("$SYS/status").empty());
    CHECK(t.match("$devices/d1/status") == Hits{{2, {"d1"}}});
    CHECK(t.match("d1/status") == Hits{{0, {"d1"}}, {1, {"d1/status"}}});
}

TEST_CASE("'$' levels after the first are matched by captures and literals alike") {
    Tree t({"homie/{device}/$state", "homie/{device}/{attribute}"});
    CHECK(t.match("homie/weather-1/$state") == Hits{{0, {"weather-1"}}, {1, {"weather-1", "$state"}}});
}

TEST_CASE("every matching rule is reported, in file order, whatever the tree order") {
    Tree t({"tele/{rest*}", "tele/{device}/SENSOR", "{prefix}/{device}/SENSOR", "tele/kitchen/SENSOR",
            "tele/{device}/STATE"});
    CHECK(t.match("tele/kitchen/SENSOR") == Hits{{0, {"kitchen/SENSOR"}},
                                                 {1, {"kitchen"}},
                                                 {2, {"tele", "kitchen"}},
                                                 {3, {}}});
}

TEST_CASE("two rules with the same pattern both match, with the same captures") {
    Tree t({"shellies/{device}/relay/{n}", "shellies/{device}/relay/{n}"});
    CHECK(t.match("shellies/shelly1-ABC123/relay/0") ==
          Hits{{0, {"shelly1-ABC123", "0"}}, {1, {"shelly1-ABC123", "0"}}});
}

TEST_CASE("a CoAP path matches without its leading '/' being a level") {
    Tree t({"/sensors/{device}", "/{rest*}"}, PatternSyntax::coap_path);
    CHECK(t.match("/sensors/t1") == Hits{{0, {"t1"}}, {1, {"sensors/t1"}}});
    CHECK(t.match("/sensors") == Hits{{1, {"sensors"}}});
}

TEST_CASE("CoAP: a first segment starting with '$' is an ordinary segment") {
    Tree t({"/{device}/data"}, PatternSyntax::coap_path);
    CHECK(t.match("/$x/data") == Hits{{0, {"$x"}}});
}

TEST_CASE("an empty tree matches nothing") {
    PatternTree tree;
    PatternTree::Scratch s;
    tree.match("tele/kitchen/SENSOR", s);
    CHECK(s.matches.empty());
}

TEST_CASE("a scratch reused for another topic holds only that topic's matches") {
    Tree t({"tele/{device}/SENSOR", "stat/{device}/POWER"});
    CHECK(t.match("tele/a/SENSOR") == Hits{{0, {"a"}}});
    CHECK(t.match("stat/b/POWER") == Hits{{1, {"b"}}});
    CHECK(t.match("cmnd/b/POWER").empty());
}
