#include "gateway/model/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace hubgate {

std::string base64_encode(std::string_view bytes) {
    std::string out;
    base64_encode_to(out, bytes);
    return out;
}

void base64_encode_to(std::string& out, std::string_view bytes) {
    const std::size_t start = out.size();
    // +1: EVP_EncodeBlock writes a terminating NUL after the text.
    out.resize(start + 4 * ((bytes.size() + 2) / 3) + 1);
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(start + static_cast<std::size_t>(n));
}

Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return Error{"base64 text length is not a multiple of 4"};
    for (char c : text) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                        c == '+' || c == '/' || c == '=';
        if (!ok) return Error{"base64 text contains a character outside A-Z a-z 0-9 + / ="};
    }
    const auto pad_at = text.find('=');
    if (pad_at != std::string_view::npos && (text.size() - pad_at > 2 || text.find_first_not_of('=', pad_at) != std::string_view::npos))
        return Error{"base64 padding is malformed"};
    std::string out(3 * (text.size() / 4), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) return Error{"base64 text does not decode"};
    // EVP_DecodeBlock does not strip the bytes that padding stands for.
    std::size_t len = static_cast<std::size_t>(n);
    if (!text.empty() && text.back() == '=') --len;
    if (text.size() > 1 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &md_len);
    return std::string(reinterpret_cast<const char*>(md), md_len);
}

Result<std::string> random_device_key() {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) return Error{"OpenSSL's random generator failed (not seeded?)"};
    return base64_encode(std::string_view(reinterpret_cast<const char*>(key), sizeof key));
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hubgate
