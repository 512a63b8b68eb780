#include "gateway/model/sas_token.hpp"

#include <charconv>

#include "gateway/model/crypto.hpp"
#include "gateway/model/url_encoding.hpp"

namespace hubgate {
namespace {

constexpr std::string_view kPrefix = "SharedAccessSignature ";

// The raw 32-byte signature over `sr` exactly as sent, "\n", and the expiry in decimal.
std::string sign(std::string_view key, std::string_view sr_raw, std::int64_t expiry) {
    std::string to_sign;
    to_sign.reserve(sr_raw.size() + 21);
    to_sign.append(sr_raw);
    to_sign.push_back('\n');
    to_sign.append(std::to_string(expiry));
    return hmac_sha256(key, to_sign);
}

}  // namespace

Result<std::string> make_sas_token(std::string_view resource_uri, std::string_view key_base64,
                                   std::int64_t expiry_unix, std::string_view key_name) {
    auto key = base64_decode(key_base64);
    if (!key) return Error{"shared access key is not valid base64: " + key.error()};
    std::string token(kPrefix);
    token.append("sr=");
    const auto sr_at = token.size();
    url_encode_to(token, resource_uri);
    const auto sr_raw = std::string_view(token).substr(sr_at);
    const auto sig = base64_encode(sign(*key, sr_raw, expiry_unix));
    token.append("&sig=");
    url_encode_to(token, sig);
    token.append("&se=");
    token.append(std::to_string(expiry_unix));
    if (!key_name.empty()) {
        token.append("&skn=");
        url_encode_to(token, key_name);
    }
    return token;
}

Result<SasToken> parse_sas_token(std::string_view token) {
    if (!token.starts_with(kPrefix))
        return Error{"SAS token must start with 'SharedAccessSignature ' followed by sr=...&sig=...&se=..."};
    std::string_view rest = token.substr(kPrefix.size());
    SasToken out;
    bool have_sr = false, have_sig = false, have_se = false, have_skn = false;
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto field = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (field.empty()) continue;
        const auto eq = field.find('=');
        if (eq == std::string_view::npos)
            return Error{"SAS token field '" + std::string(field.substr(0, 32)) + "' has no '='"};
        const auto name = field.substr(0, eq);
        const auto value = field.substr(eq + 1);
        auto once = [&](bool& seen) -> Status {
            if (seen) return Error{"SAS token has more than one '" + std::string(name) + "' field"};
            seen = true;
            return std::nullopt;
        };
        if (name == "sr") {
            if (auto dup = once(have_sr)) return std::move(*dup);
            auto decoded = url_decode(value);
            if (!decoded) return Error{"SAS token sr: " + decoded.error()};
            out.sr_raw = std::string(value);
            out.sr = std::move(decoded).value();
        } else if (name == "sig") {
            if (auto dup = once(have_sig)) return std::move(*dup);
            out.sig_raw = std::string(value);
        } else if (name == "se") {
            if (auto dup = once(have_se)) return std::move(*dup);
            std::int64_t se = 0;
            const auto* end = value.data() + value.size();
            const auto [ptr, ec] = std::from_chars(value.data(), end, se);
            if (value.empty() || value.front() == '-' || ec != std::errc{} || ptr != end)
                return Error{"SAS token se '" + std::string(value.substr(0, 32)) +
                             "' is not an expiry in Unix seconds"};
            out.se = se;
        } else if (name == "skn") {
            if (auto dup = once(have_skn)) return std::move(*dup);
            auto decoded = url_decode(value);
            if (!decoded) return Error{"SAS token skn: " + decoded.error()};
            out.skn = std::move(decoded).value();
        }
        // Other fields are ignored: the signature covers only sr and se, so they cannot change meaning.
    }
    if (!have_sr || out.sr_raw.empty()) return Error{"SAS token has no sr (resource URI)"};
    if (!have_sig || out.sig_raw.empty()) return Error{"SAS token has no sig (signature)"};
    if (!have_se) return Error{"SAS token has no se (expiry)"};
    return out;
}

SasCheck verify_sas_token(const SasToken& token, std::string_view key_base64, std::int64_t now_unix) {
    auto key = base64_decode(key_base64);
    if (!key) return SasCheck::bad_signature;
    // Compare signature bytes, not text: SDKs differ in escape case (%2F vs %2f) and in whether
    // they escape '+' at all, and url_decode keeps '+' as '+'.
    auto sig_text = url_decode(token.sig_raw);
    if (!sig_text) return SasCheck::bad_signature;
    auto sig = base64_decode(*sig_text);
    if (!sig) return SasCheck::bad_signature;
    if (!constant_time_equal(*sig, sign(*key, token.sr_raw, token.se))) return SasCheck::bad_signature;
    if (token.se <= now_unix) return SasCheck::expired;
    return SasCheck::ok;
}

Result<std::string> derive_device_key(std::string_view group_key_base64, std::string_view device_id) {
    auto key = base64_decode(group_key_base64);
    if (!key) return Error{"group key is not valid base64: " + key.error()};
    return base64_encode(hmac_sha256(*key, device_id));
}

}  // namespace hubgate
