// RFC 6901 JSON pointers over nlohmann::json, parsed once when rules compile and evaluated per
// message without exceptions or allocation. Used by the rule engine's templates and `time`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hubgate::translate {

class JsonPointer {
public:
    // Parses "" (the whole document) or "/a/b~1c/0". On a syntax error returns false and says why
    // in `why` (a pointer must start with '/'; '~' must be followed by '0' or '1').
    static bool parse(std::string_view text, JsonPointer& out, std::string& why);

    // The value the pointer names, or null when it names nothing (a missing key, an index past the
    // end, "-", a leading zero, stepping into a scalar). Never throws.
    const nlohmann::json* resolve(const nlohmann::json& doc) const noexcept;

    const std::string& text() const noexcept { return text_; }
    const std::vector<std::string>& tokens() const noexcept { return tokens_; }

private:
    std::string text_;                 // as written, for messages
    std::vector<std::string> tokens_;  // unescaped reference tokens
};

}  // namespace hubgate::translate
