// Compiled templates of translation rules (device, module, properties, field, c2d_topic): literal
// pieces and placeholder references, so rendering per message is a few appends (STYLE.md).
// Used by the rule engine (rule_set.cpp) only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gateway/model/hub_message.hpp"
#include "gateway/translate/json_pointer.hpp"

namespace hubgate::translate {

struct TemplatePiece {
    enum class Kind : std::uint8_t { literal, capture, json, client, gateway, prop };
    Kind kind = Kind::literal;
    std::uint32_t capture = 0;  // capture: its index in the pattern's captures
    std::string text;           // literal: the text; capture: its name; prop: the property's name
    JsonPointer pointer;        // json
};

// Which placeholders a template may hold where it is written.
struct TemplateContext {
    const std::vector<std::string>* captures = nullptr;  // the rule pattern's capture names
    std::string_view pattern;                            // the pattern as written, for messages
    bool json = true;    // {json:/pointer}: not in field (applied while decoding) nor c2d_topic
    bool client = true;  // {client}: not in c2d_topic (no connection is at hand then)
    bool prop = false;   // {prop:NAME}: c2d_topic only
};

// What placeholders render to for one message.
struct TemplateValues {
    const std::string_view* captures = nullptr;  // in pattern order
    std::size_t capture_count = 0;
    const nlohmann::json* doc = nullptr;  // null: every {json:} misses
    std::string_view client;
    std::string_view gateway;
    const AppProperties* props = nullptr;  // null: every {prop:} is missing
};

enum class RenderStatus {
    ok,
    json_miss,     // a {json:} pointer named nothing, or something not a string or number
    prop_missing,  // a {prop:NAME} the message does not have
};

class Template {
public:
    // Syntax: literal text with placeholders {capture}, {json:/pointer}, {client}, {gateway},
    // {prop:NAME}; "{{" and "}}" are a literal brace. A placeholder ends at the first '}'. On error
    // returns false and says why in `why`.
    static bool compile(std::string_view text, const TemplateContext& context, Template& out, std::string& why);

    const std::string& text() const noexcept { return text_; }
    const std::vector<TemplatePiece>& pieces() const noexcept { return pieces_; }
    bool uses_json() const noexcept { return uses_json_; }
    // No placeholders: renders to text() (unescaped) whatever the message.
    bool is_literal() const noexcept;

    // Appends the rendering to `out`. Strings from {json:} render as their value, numbers as
    // written in the JSON (see render_json_scalar). On a miss, `failed` names the piece and `out`
    // holds a partial rendering.
    RenderStatus render(const TemplateValues& values, std::string& out,
                        const TemplatePiece** failed = nullptr) const;

private:
    std::string text_;
    std::vector<TemplatePiece> pieces_;
    bool uses_json_ = false;
};

// Appends a JSON string's value, or a number as written: integers exactly (12 stays 12, big
// unsigned ones too); floating-point numbers as nlohmann's dump() prints them, the shortest text
// that reads back to the same double (so 21.50 renders 21.5 and 1e3 renders 1000.0: the parsed
// document no longer holds the original spelling). Anything else: false, nothing appended.
bool render_json_scalar(const nlohmann::json& value, std::string& out);

}  // namespace hubgate::translate
