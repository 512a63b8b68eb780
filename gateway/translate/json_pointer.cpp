#include "gateway/translate/json_pointer.hpp"

#include <nlohmann/json.hpp>

namespace hubgate::translate {
namespace {

// RFC 6901 §4: an array index is "0" or digits without a leading zero; "-" (past the end) and
// anything else name no element.
bool parse_index(const std::string& token, std::size_t& index) noexcept {
    if (token.empty() || token.size() > 18) return false;  // 18 digits cannot overflow size_t
    if (token.size() > 1 && token[0] == '0') return false;
    std::size_t v = 0;
    for (char c : token) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::size_t>(c - '0');
    }
    index = v;
    return true;
}

}  // namespace

bool JsonPointer::parse(std::string_view text, JsonPointer& out, std::string& why) {
    out.text_.assign(text);
    out.tokens_.clear();
    if (text.empty()) return true;
    if (text[0] != '/') {
        why = "a JSON pointer must be empty or start with '/' (RFC 6901), e.g. /Time or /ENERGY/Power";
        return false;
    }
    std::string token;
    for (std::size_t i = 1; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '/') {
            out.tokens_.push_back(token);
            token.clear();
            continue;
        }
        if (text[i] != '~') {
            token.push_back(text[i]);
            continue;
        }
        if (i + 1 < text.size() && (text[i + 1] == '0' || text[i + 1] == '1')) {
            token.push_back(text[i + 1] == '0' ? '~' : '/');
            ++i;
            continue;
        }
        why = "'~' in a JSON pointer must be followed by 0 (for '~') or 1 (for '/')";
        return false;
    }
    return true;
}

const nlohmann::json* JsonPointer::resolve(const nlohmann::json& doc) const noexcept {
    const nlohmann::json* at = &doc;
    for (const auto& token : tokens_) {
        if (at->is_object()) {
            const auto& object = at->get_ref<const nlohmann::json::object_t&>();
            const auto it = object.find(token);
            if (it == object.end()) return nullptr;
            at = &it->second;
        } else if (at->is_array()) {
            const auto& array = at->get_ref<const nlohmann::json::array_t&>();
            std::size_t index = 0;
            if (!parse_index(token, index) || index >= array.size()) return nullptr;
            at = &array[index];
        } else {
            return nullptr;
        }
    }
    return at;
}

}  // namespace hubgate::translate
