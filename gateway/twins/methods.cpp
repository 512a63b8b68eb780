#include "gateway/twins/methods.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace hubgate::twins {

using json = nlohmann::json;

Result<InvokeRequest> parse_invoke(std::string_view body) {
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error{"the invoke payload must be a JSON object"};
    InvokeRequest r;
    const auto device = j.find("deviceId");
    const auto method = j.find("methodName");
    if (device == j.end() || !device->is_string() || device->get<std::string>().empty())
        return Error{"deviceId (a string) is missing"};
    if (method == j.end() || !method->is_string() || method->get<std::string>().empty())
        return Error{"methodName (a string) is missing"};
    r.device_id = device->get<std::string>();
    r.method_name = method->get<std::string>();
    if (r.method_name.find_first_of("/+#?") != std::string::npos)
        return Error{"methodName may not hold '/', '+', '#' or '?'"};
    const auto payload = j.find("payload");
    r.payload = payload == j.end() ? "null" : payload->dump();
    if (const auto t = j.find("responseTimeoutInSeconds"); t != j.end()) {
        if (!t->is_number()) return Error{"responseTimeoutInSeconds must be a number"};
        const double s = std::clamp(t->get<double>(), 1.0, static_cast<double>(kMaxMethodTimeoutSeconds));
        r.timeout = std::chrono::milliseconds(static_cast<long>(s * 1000));
    }
    return r;
}

std::string invoke_answer(int status, std::string_view device_payload) {
    json out = json::object();
    out["status"] = status;
    if (device_payload.empty()) {
        out["payload"] = nullptr;
    } else {
        json p = json::parse(device_payload, nullptr, false);
        out["payload"] = p.is_discarded() ? json(std::string(device_payload)) : std::move(p);
    }
    return out.dump();
}

std::string invoke_error(int status, std::string_view message) {
    json out = json::object();
    out["status"] = status;
    out["payload"] = {{"message", std::string(message)}};
    return out.dump();
}

}  // namespace hubgate::twins
