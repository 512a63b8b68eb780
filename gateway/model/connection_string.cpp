#include "gateway/model/connection_string.hpp"

#include <array>

#include "gateway/model/crypto.hpp"
#include "gateway/model/validation.hpp"

namespace hubgate {
namespace {

// A DNS name or IPv4 literal; enough to refuse the pastes that would only fail at connect time.
bool is_host_name(std::string_view host) noexcept {
    if (host.empty() || host.size() > 253) return false;
    for (char c : host) {
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_') return false;
    }
    return true;
}

}  // namespace

std::string ConnectionString::to_string() const {
    std::string out = "HostName=" + host_name + ";DeviceId=" + device_id + ";SharedAccessKey=" + shared_access_key;
    if (!module_id.empty()) out += ";ModuleId=" + module_id;
    return out;
}

Result<ConnectionString> parse_connection_string(std::string_view text) {
    ConnectionString cs;
    // Which keys were seen, so that a repeated key is refused rather than silently overriding.
    std::array<bool, 4> seen{};
    const std::array<std::string_view, 4> keys{"HostName", "DeviceId", "SharedAccessKey", "ModuleId"};
    std::array<std::string*, 4> fields{&cs.host_name, &cs.device_id, &cs.shared_access_key, &cs.module_id};

    while (!text.empty()) {
        const auto semi = text.find(';');
        const std::string_view segment = text.substr(0, semi);
        text = semi == std::string_view::npos ? std::string_view{} : text.substr(semi + 1);
        if (segment.empty()) continue;  // "a=b;;c=d" and a trailing ';' are common in copied strings

        // Split on the first '=' only: base64 keys end in '=' padding.
        const auto eq = segment.find('=');
        if (eq == std::string_view::npos)
            return Error{"connection string part \"" + std::string(segment) + "\" is not Key=Value"};
        const std::string_view key = segment.substr(0, eq);
        const std::string_view value = segment.substr(eq + 1);

        std::size_t i = 0;
        while (i < keys.size() && keys[i] != key) ++i;
        if (i == keys.size())
            return Error{"unknown connection string key \"" + std::string(key) +
                         "\" (allowed: HostName, DeviceId, SharedAccessKey, ModuleId; keys are case-sensitive)"};
        if (seen[i]) return Error{"connection string names " + std::string(key) + " twice"};
        if (value.empty()) return Error{"connection string " + std::string(key) + " is empty"};
        seen[i] = true;
        *fields[i] = std::string(value);
    }

    for (std::size_t i = 0; i < 3; ++i)
        if (!seen[i]) return Error{"connection string lacks " + std::string(keys[i])};

    if (!is_host_name(cs.host_name))
        return Error{"connection string HostName \"" + cs.host_name + "\" is not a host name"};
    if (!is_hub_id(cs.device_id))
        return Error{"connection string DeviceId \"" + cs.device_id +
                     "\" is not a valid device id (1-128 chars: A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ ')"};
    if (seen[3] && !is_hub_id(cs.module_id))
        return Error{"connection string ModuleId \"" + cs.module_id +
                     "\" is not a valid module id (1-128 chars: A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ ')"};
    if (auto key = base64_decode(cs.shared_access_key); !key)
        return Error{"connection string SharedAccessKey is not valid base64: " + key.error()};
    return cs;
}

}  // namespace hubgate
