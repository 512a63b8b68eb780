// The seam between the adapters' authentication and pairing: keys derived from enrollment groups
// for a device id the gateway does not know, and the decision to register it. Header only; the
// adapters include it, gateway/app hands them the Pairing object that implements it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hubgate::pairing {

// The key a device would hold if it belongs to one enrollment group.
struct Candidate {
    std::string enrollment;  // enrollment id
    std::string key;         // base64(HMAC-SHA256(group key, device id)): the device's key text
    std::string module_id;   // the enrollment's module id (empty = the listener's)
};

enum class Admission {
    registered,  // the device is registered now (window open, or register = "always")
    pending,     // refused and listed by `hubgate devices pending`
    failed,      // registration failed (logged); refused
};

class Enroller {
public:
    virtual ~Enroller() = default;
    // One candidate per enrollment group, in config order; empty when there are none. Io thread.
    virtual std::vector<Candidate> candidates(std::string_view device_id) const = 0;
    // The device proved it holds `c.key` (a SAS signed with it, the password, a DTLS-PSK handshake).
    // `address` is the peer's IP address. Io thread.
    virtual Admission admit(std::string_view device_id, const Candidate& c, std::string_view address) = 0;
};

}  // namespace hubgate::pairing
