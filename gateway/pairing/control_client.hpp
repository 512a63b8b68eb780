// The CLI's side of the control socket: one request line to the running gateway, its answer back.
// `hubgate pair ...`, `devices pending` and `devices approve` use it (docs/pairing.md). No Asio.
#pragma once

#include <string>

#include "config/config.hpp"
#include "gateway/model/result.hpp"

namespace hubgate::pairing {

// `<data_dir>/hubgate.sock`: beside the store, owned by the gateway's user (docs/pairing.md).
std::string control_socket_path(const config::Config& cfg);

struct ControlReply {
    bool ok = false;
    std::string text;  // what to print (stdout when ok, stderr otherwise)
};

// Error (with the cause) when no gateway answers on `socket_path`.
Result<ControlReply> control_request(const std::string& socket_path, const std::string& request);

}  // namespace hubgate::pairing
