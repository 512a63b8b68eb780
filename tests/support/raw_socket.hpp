// A bare TCP client for sending hand-made (broken) bytes to a server and seeing how it reacts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace hubgate::test {

class RawSocket {
public:
    explicit RawSocket(std::uint16_t port);  // connects to 127.0.0.1:port (throws on failure)
    ~RawSocket();
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    bool send(const std::vector<std::uint8_t>& bytes);
    bool send(const std::string& bytes);
    // Reads whatever arrives within `timeout` (stops early once `at_least` bytes are in).
    std::vector<std::uint8_t> receive(std::chrono::milliseconds timeout, std::size_t at_least = 1);
    // True when the peer closed (EOF or reset) within `timeout`.
    bool closed_by_peer(std::chrono::milliseconds timeout);

private:
    int fd_ = -1;
};

}  // namespace hubgate::test
