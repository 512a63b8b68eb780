// IoT Hub device connection strings: `HostName=...;DeviceId=...;SharedAccessKey=...[;ModuleId=...]`.
// Parsed by config (upstream identity) and printed by `hubgate devices add`.
#pragma once

#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate {

struct ConnectionString {
    std::string host_name;
    std::string device_id;
    std::string shared_access_key;  // base64 text, validated to decode
    std::string module_id;          // optional

    std::string to_string() const;
};

// Keys are case-sensitive as IoT Hub prints them; HostName, DeviceId and SharedAccessKey are required,
// unknown keys are an error, values may contain '=' (base64 padding).
Result<ConnectionString> parse_connection_string(std::string_view text);

}  // namespace hubgate
