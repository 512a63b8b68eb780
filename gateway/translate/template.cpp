#include "gateway/translate/template.hpp"

#include <algorithm>
#include <charconv>

#include <nlohmann/json.hpp>

namespace hubgate::translate {
namespace {

bool is_name_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

template <class Int>
void append_integer(Int v, std::string& out) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

std::string list_captures(const std::vector<std::string>& captures) {
    if (captures.empty()) return "it has none";
    std::string s = "it has ";
    for (std::size_t i = 0; i < captures.size(); ++i) {
        if (i) s += ", ";
        s += "{" + captures[i] + "}";
    }
    return s;
}

}  // namespace

bool render_json_scalar(const nlohmann::json& value, std::string& out) {
    switch (value.type()) {
    case nlohmann::json::value_t::string:
        out += value.get_ref<const nlohmann::json::string_t&>();
        return true;
    case nlohmann::json::value_t::number_integer:
        append_integer(value.get<nlohmann::json::number_integer_t>(), out);
        return true;
    case nlohmann::json::value_t::number_unsigned:
        append_integer(value.get<nlohmann::json::number_unsigned_t>(), out);
        return true;
    case nlohmann::json::value_t::number_float:
        out += value.dump();
        return true;
    default:
        return false;
    }
}

bool Template::compile(std::string_view text, const TemplateContext& context, Template& out, std::string& why) {
    out = Template{};
    out.text_.assign(text);
    std::string literal;
    auto flush = [&] {
        if (literal.empty()) return;
        TemplatePiece piece;
        piece.text = std::move(literal);
        out.pieces_.push_back(std::move(piece));
        literal.clear();
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') {
                literal.push_back('}');
                ++i;
                continue;
            }
            why = "a '}' without its '{' (write '}}' for a literal brace)";
            return false;
        }
        if (c != '{') {
            literal.push_back(c);
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '{') {
            literal.push_back('{');
            ++i;
            continue;
        }
        const auto close = text.find('}', i + 1);
        if (close == std::string_view::npos) {
            why = "a '{' without its '}' (write '{{' for a literal brace)";
            return false;
        }
        const auto inner = text.substr(i + 1, close - i - 1);
        const std::string shown = "{" + std::string(inner) + "}";
        i = close;
        TemplatePiece piece;
        if (inner.rfind("json:", 0) == 0) {
            if (!context.json) {
                why = shown + ": {json:...} cannot be used here (only in device, module and properties)";
                return false;
            }
            std::string pointer_why;
            if (!JsonPointer::parse(inner.substr(5), piece.pointer, pointer_why)) {
                why = shown + ": " + pointer_why;
                return false;
            }
            piece.kind = TemplatePiece::Kind::json;
            out.uses_json_ = true;
        } else if (inner.rfind("prop:", 0) == 0) {
            if (!context.prop) {
                why = shown + ": {prop:NAME} is a property of a C2D message; it can be used only in c2d_topic";
                return false;
            }
            if (inner.size() == 5) {
                why = shown + ": {prop:NAME} needs the application property's name";
                return false;
            }
            piece.kind = TemplatePiece::Kind::prop;
            piece.text.assign(inner.substr(5));
        } else if (inner == "client") {
            if (!context.client) {
                why = shown + ": {client} names the sending connection, which a C2D message does not have";
                return false;
            }
            piece.kind = TemplatePiece::Kind::client;
        } else if (inner == "gateway") {
            piece.kind = TemplatePiece::Kind::gateway;
        } else if (!inner.empty() && std::all_of(inner.begin(), inner.end(), is_name_char)) {
            int index = -1;
            if (context.captures)
                for (std::size_t k = 0; k < context.captures->size(); ++k)
                    if ((*context.captures)[k] == inner) index = static_cast<int>(k);
            if (index < 0) {
                why = "unknown placeholder " + shown + ": the pattern '" + std::string(context.pattern) +
                      "' has no capture '" + std::string(inner) + "' (" +
                      list_captures(context.captures ? *context.captures : std::vector<std::string>{}) + ")";
                return false;
            }
            piece.kind = TemplatePiece::Kind::capture;
            piece.capture = static_cast<std::uint32_t>(index);
            piece.text.assign(inner);
        } else {
            why = "unknown placeholder " + shown +
                  ": expected {capture}, {json:/pointer}, {client}, {gateway}" + (context.prop ? " or {prop:NAME}" : "");
            return false;
        }
        flush();
        out.pieces_.push_back(std::move(piece));
    }
    flush();
    return true;
}

bool Template::is_literal() const noexcept {
    for (const auto& piece : pieces_)
        if (piece.kind != TemplatePiece::Kind::literal) return false;
    return true;
}

RenderStatus Template::render(const TemplateValues& values, std::string& out, const TemplatePiece** failed) const {
    for (const auto& piece : pieces_) {
        switch (piece.kind) {
        case TemplatePiece::Kind::literal:
            out += piece.text;
            break;
        case TemplatePiece::Kind::capture:
            // compile() checked the index against the pattern the values come from.
            if (piece.capture < values.capture_count) out += values.captures[piece.capture];
            break;
        case TemplatePiece::Kind::json: {
            const nlohmann::json* value = values.doc ? piece.pointer.resolve(*values.doc) : nullptr;
            if (!value || !render_json_scalar(*value, out)) {
                if (failed) *failed = &piece;
                return RenderStatus::json_miss;
            }
            break;
        }
        case TemplatePiece::Kind::client:
            out += values.client;
            break;
        case TemplatePiece::Kind::gateway:
            out += values.gateway;
            break;
        case TemplatePiece::Kind::prop: {
            const AppProperty* p = values.props ? values.props->find(piece.text) : nullptr;
            if (!p) {
                if (failed) *failed = &piece;
                return RenderStatus::prop_missing;
            }
            if (p->value) out += *p->value;
            break;
        }
        }
    }
    return RenderStatus::ok;
}

}  // namespace hubgate::translate
