// The running gateway's control socket (a unix stream socket, `<data_dir>/hubgate.sock`, mode
// 0600, peers checked with SO_PEERCRED): `hubgate pair open|close|status`, `devices pending` and
// `devices approve` act through it at once. One request line per connection; docs/pairing.md says
// why a local socket and not the network or the store. Served on the io thread.
#pragma once

#include <memory>
#include <string>

#include "gateway/model/result.hpp"

namespace boost::asio {
class io_context;
}

namespace hubgate::pairing {

class Pairing;

class ControlServer {
public:
    ControlServer(boost::asio::io_context& io, Pairing& pairing, std::string socket_path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Replaces a stale socket file (a gateway that was killed), binds and listens.
    Status start();
    // Stops accepting and removes the socket file.
    void stop();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

// What the gateway answers to one request line ("ok\n..." or "error\n..."); pure apart from the
// Pairing it acts on (unit-tested without a socket).
std::string handle_control_request(Pairing& pairing, const std::string& line);

}  // namespace hubgate::pairing
