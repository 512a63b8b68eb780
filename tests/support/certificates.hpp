// A test CA and a server certificate for 127.0.0.1, made with the openssl CLI, for TLS listeners
// (mqtts) and the IoT Hub device SDKs, which speak TLS only.
#pragma once

#include "tests/support/temp_dir.hpp"

namespace hubgate::test {

// ca.crt, server.crt (subjectAltName IP:127.0.0.1, signed by the CA) and server.key in `dir`.
// EC P-256 keys: quick to generate. Fails the test when openssl does.
void make_certificates(const TempDir& dir);

}  // namespace hubgate::test
