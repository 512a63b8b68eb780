#include "tests/support/certificates.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace hubgate::test {

namespace {

void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const auto r = run(args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
}

}  // namespace

void make_certificates(const TempDir& dir) {
    const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    std::vector<std::string> ca{"req", "-x509", "-days", "2", "-subj", "/CN=hubgate test CA", "-keyout",
                                dir.file("ca.key"), "-out", dir.file("ca.crt"), "-addext",
                                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"};
    ca.insert(ca.begin() + 2, ec.begin(), ec.end());
    openssl(ca);
    std::vector<std::string> csr{"req", "-subj", "/CN=127.0.0.1", "-keyout", dir.file("server.key"), "-out",
                                 dir.file("server.csr")};
    csr.insert(csr.begin() + 1, ec.begin(), ec.end());
    openssl(csr);
    const auto ext = dir.write("server.ext", "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n");
    openssl({"x509", "-req", "-days", "2", "-in", dir.file("server.csr"), "-CA", dir.file("ca.crt"), "-CAkey",
             dir.file("ca.key"), "-CAcreateserial", "-out", dir.file("server.crt"), "-extfile", ext});
}

}  // namespace hubgate::test
