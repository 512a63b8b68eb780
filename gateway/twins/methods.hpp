// Direct methods through the gateway's one identity (docs/twins.md): the cloud invokes the
// gateway's method `invoke` with {"deviceId","methodName","payload","responseTimeoutInSeconds"};
// the answer carries the device's status in the topic and in {"status":S,"payload":...}.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate::twins {

inline constexpr int kDefaultMethodTimeoutSeconds = 30;
inline constexpr int kMaxMethodTimeoutSeconds = 300;

struct InvokeRequest {
    std::string device_id;
    std::string method_name;
    std::string payload;  // JSON text ("null" when absent)
    std::chrono::milliseconds timeout{kDefaultMethodTimeoutSeconds * 1000};
};

Result<InvokeRequest> parse_invoke(std::string_view body);

// {"status":S,"payload":P}: P is the device's payload when it is JSON, else that text as a string;
// null when empty.
std::string invoke_answer(int status, std::string_view device_payload);
// {"status":S,"payload":{"message":M}} for the gateway's own refusals (404, 504, 400).
std::string invoke_error(int status, std::string_view message);

}  // namespace hubgate::twins
