// coap-client-openssl (libcoap's client) as a test device: runs it and reads its `-v 6` output (the
// response code, the ETag and option 65000 as it prints them).
#pragma once

#include <cctype>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace hubgate::test {

// `coap-client-openssl -m METHOD -v 6 -B 5 EXTRA... URI`, killed after 15 s.
inline RunResult coap_client(const std::string& method, const std::string& uri, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"coap-client-openssl", "-m", method, "-v", "6", "-B", "5"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(uri);
    return run(argv, std::chrono::seconds(15));
}

inline bool has(const RunResult& r, const std::string& text) { return r.output.find(text) != std::string::npos; }

// Whether coap-client printed a PDU with this response code ("2.04"). -v 6 prints each PDU as
// "v:1 t:ACK c:2.04 i:..."; a bare "2.04" would also match timestamps such as "13:42:32.044".
inline bool has_code(const RunResult& r, const std::string& code) { return has(r, "c:" + code + " "); }

// The lock as coap-client prints the ETag option ("ETag:0x0123456789abcdef"), as lowercase hex; "" if none.
inline std::string etag_of(const RunResult& r) {
    const auto at = r.output.find("ETag:0x");
    if (at == std::string::npos) return {};
    std::string hex;
    for (auto i = at + 7; i < r.output.size() && std::isxdigit(static_cast<unsigned char>(r.output[i])); ++i)
        hex += static_cast<char>(std::tolower(static_cast<unsigned char>(r.output[i])));
    return hex;
}

// The properties option (65000) as coap-client prints it (65000:\x25\x32...), decoded; "" if none.
inline std::string properties_of(const RunResult& r) {
    auto at = r.output.find("65000:");
    if (at == std::string::npos) return {};
    std::string out;
    for (at += 6; at + 3 < r.output.size() && r.output[at] == '\\' && r.output[at + 1] == 'x'; at += 4)
        out += static_cast<char>(std::stoi(r.output.substr(at + 2, 2), nullptr, 16));
    return out;
}

}  // namespace hubgate::test
