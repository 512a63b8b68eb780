// Compiled templates (gateway/translate/template.hpp): which placeholders a template may hold where
// it is written, and what each renders to.
#include "gateway/translate/template.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace hubgate;
using namespace hubgate::translate;

namespace {

const std::vector<std::string> kCaptures{"device", "n"};  // shellies/{device}/relay/{n}

TemplateContext context(bool json = true, bool client = true, bool prop = false) {
    TemplateContext c;
    c.captures = &kCaptures;
    c.pattern = "shellies/{device}/relay/{n}";
    c.json = json;
    c.client = client;
    c.prop = prop;
    return c;
}

Template compiled(std::string_view text, const TemplateContext& c = context()) {
    Template t;
    std::string why;
    INFO(text, " ", why);
    REQUIRE(Template::compile(text, c, t, why));
    return t;
}

std::string refusal(std::string_view text, const TemplateContext& c = context()) {
    Template t;
    std::string why;
    INFO(text);
    CHECK_FALSE(Template::compile(text, c, t, why));
    CHECK_FALSE(why.empty());
    return why;
}

struct Message {
    std::vector<std::string_view> captures{"shelly1-ABC123", "0"};
    nlohmann::json doc;
    AppProperties props;

    TemplateValues values(bool with_doc = true) const {
        TemplateValues v;
        v.captures = captures.data();
        v.capture_count = captures.size();
        v.doc = with_doc ? &doc : nullptr;
        v.client = "bridge-1";
        v.gateway = "pi-gw";
        v.props = &props;
        return v;
    }
};

std::string rendered(const Template& t, const Message& m) {
    std::string out;
    REQUIRE(t.render(m.values(), out) == RenderStatus::ok);
    return out;
}

}  // namespace

TEST_CASE("captures render as the topic's levels") {
    Message m;
    CHECK(rendered(compiled("{device}-relay-{n}"), m) == "shelly1-ABC123-relay-0");
}

TEST_CASE("{client} and {gateway} render as the connection's identity and the gateway's id") {
    Message m;
    CHECK(rendered(compiled("{client}@{gateway}"), m) == "bridge-1@pi-gw");
}

TEST_CASE("a template without placeholders is literal") {
    CHECK(compiled("tasmota").is_literal());
    CHECK_FALSE(compiled("{device}").is_literal());
    CHECK(compiled("").is_literal());
}

TEST_CASE("'{{' and '}}' are literal braces") {
    Message m;
    CHECK(rendered(compiled("{{{device}}}"), m) == "{shelly1-ABC123}");
    CHECK(compiled("a{{b}}").is_literal());
}

TEST_CASE("an unpaired brace is refused") {
    CHECK(refusal("{device").find("without its '}'") != std::string::npos);
    CHECK(refusal("device}").find("without its '{'") != std::string::npos);
}

TEST_CASE("a placeholder naming no capture of the pattern is refused, naming the pattern's captures") {
    const auto why = refusal("{dev}");
    CHECK(why == "unknown placeholder {dev}: the pattern 'shellies/{device}/relay/{n}' has no capture 'dev' "
                 "(it has {device}, {n})");
}

TEST_CASE("a placeholder of an unknown kind is refused") {
    CHECK(refusal("{env:HOME}").find("unknown placeholder {env:HOME}") != std::string::npos);
    refusal("{}");
    refusal("{device*}");
}

TEST_CASE("{json:} with a bad pointer is refused with RFC 6901's rule") {
    CHECK(refusal("{json:Time}").find("start with '/'") != std::string::npos);
    CHECK(refusal("{json:/a~2}").find("'~'") != std::string::npos);
}

TEST_CASE("{json:} is refused where the body is not at hand") {
    CHECK(refusal("{json:/Time}", context(false)).find("cannot be used here") != std::string::npos);
}

TEST_CASE("{prop:NAME} is refused outside c2d_topic") {
    CHECK(refusal("{prop:command}").find("only in c2d_topic") != std::string::npos);
}

TEST_CASE("{prop:} without a name is refused") { refusal("{prop:}", context(false, false, true)); }

TEST_CASE("{client} is refused in c2d_topic") {
    CHECK(refusal("cmnd/{client}", context(false, false, true)).find("{client}") != std::string::npos);
}

TEST_CASE("{json:} renders a string's value") {
    Message m;
    m.doc = nlohmann::json::parse(R"({"Time":"2024-01-15T12:34:56","DS18B20":{"Id":"01144A0CB2AA"}})");
    CHECK(rendered(compiled("ds-{json:/DS18B20/Id}"), m) == "ds-01144A0CB2AA");
}

TEST_CASE("{json:} renders numbers as written: integers exactly, floats by their shortest text") {
    Message m;
    m.doc = nlohmann::json::parse(
        R"({"Power":12,"neg":-7,"big":18446744073709551615,"Voltage":230.5,"Temperature":21.50})");
    CHECK(rendered(compiled("{json:/Power}"), m) == "12");
    CHECK(rendered(compiled("{json:/neg}"), m) == "-7");
    CHECK(rendered(compiled("{json:/big}"), m) == "18446744073709551615");
    CHECK(rendered(compiled("{json:/Voltage}"), m) == "230.5");
    CHECK(rendered(compiled("{json:/Temperature}"), m) == "21.5");  // the documented limit
}

TEST_CASE("{json:} follows RFC 6901: escapes, array indexes, the whole document") {
    Message m;
    m.doc = nlohmann::json::parse(R"({"a/b":"slash","m~n":"tilde","list":["x","y"]})");
    CHECK(rendered(compiled("{json:/a~1b}"), m) == "slash");
    CHECK(rendered(compiled("{json:/m~0n}"), m) == "tilde");
    CHECK(rendered(compiled("{json:/list/1}"), m) == "y");
    Message whole;
    whole.doc = "online";
    CHECK(rendered(compiled("{json:}"), whole) == "online");
}

TEST_CASE("{json:} misses on a missing key, a bad index, or a value that is not a string or number") {
    Message m;
    m.doc = nlohmann::json::parse(R"({"on":true,"none":null,"obj":{},"list":["x"]})");
    for (const char* text : {"{json:/absent}", "{json:/on}", "{json:/none}", "{json:/obj}", "{json:/list}",
                             "{json:/list/1}", "{json:/list/-}", "{json:/list/01}", "{json:/on/x}"}) {
        INFO(text);
        std::string out;
        const TemplatePiece* failed = nullptr;
        const auto t = compiled(text);
        CHECK(t.render(m.values(), out, &failed) == RenderStatus::json_miss);
        REQUIRE(failed != nullptr);
        CHECK(failed->kind == TemplatePiece::Kind::json);
    }
}

TEST_CASE("{json:} misses when no document is at hand") {
    Message m;
    m.doc = nlohmann::json::parse(R"({"Id":"x"})");
    std::string out;
    CHECK(compiled("{json:/Id}").render(m.values(false), out) == RenderStatus::json_miss);
}

TEST_CASE("uses_json says whether a template needs the decoded body") {
    CHECK(compiled("{device}-{json:/Id}").uses_json());
    CHECK_FALSE(compiled("{device}-{gateway}").uses_json());
}

TEST_CASE("{prop:NAME} renders the C2D message's property, and reports a missing one") {
    Message m;
    m.props.set("command", std::string("POWER"));
    const auto t = compiled("cmnd/{device}/{prop:command}", context(false, false, true));
    CHECK(rendered(t, m) == "cmnd/shelly1-ABC123/POWER");

    Message without;
    std::string out;
    const TemplatePiece* failed = nullptr;
    CHECK(t.render(without.values(), out, &failed) == RenderStatus::prop_missing);
    REQUIRE(failed != nullptr);
    CHECK(failed->text == "command");
}
