#include "gateway/model/url_encoding.hpp"

namespace hubgate {
namespace {

constexpr bool is_unreserved(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

std::string url_encode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    url_encode_to(out, in);
    return out;
}

void url_encode_to(std::string& out, std::string_view in) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char ch : in) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c)) {
            out.push_back(ch);
        } else {
            const char escape[3] = {'%', kHex[c >> 4], kHex[c & 0x0F]};
            out.append(escape, 3);
        }
    }
}

Result<std::string> url_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            // '+' is not a space here: IoT Hub bags and SAS tokens are URI components, not forms.
            out.push_back(in[i]);
            continue;
        }
        const int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
        const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return Error{"malformed percent-escape at position " + std::to_string(i) +
                         ": '%' must be followed by two hex digits"};
        out.push_back(static_cast<char>((hi << 4) | lo));
        i += 2;
    }
    return out;
}

}  // namespace hubgate
