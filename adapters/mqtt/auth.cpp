#include "adapters/mqtt/auth.hpp"

#include "gateway/devices/device_directory.hpp"
#include "gateway/model/crypto.hpp"
#include "gateway/model/sas_token.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/pairing/enroller.hpp"

namespace hubgate::mqtt {

namespace {

AuthResult refuse(ConnackCode code, const char* label, std::string reason) {
    AuthResult r;
    r.code = code;
    r.counter_reason = label;
    r.reason = std::move(reason);
    return r;
}

}  // namespace

std::string_view device_id_from_username(std::string_view username) noexcept {
    const auto first = username.find('/');
    if (first == std::string_view::npos) return username;  // bare device id
    const auto rest = username.substr(first + 1);
    return rest.substr(0, rest.find('/'));
}

namespace {

// An unknown device whose credentials check out against a key derived from an enrollment group
// (`proves(key)`): registered now, or refused and pending (DESIGN.md, docs/pairing.md).
template <class Proves>
std::optional<AuthResult> try_enrollment(std::string_view id, pairing::Enroller* enroller, std::string_view address,
                                         Proves proves) {
    if (!enroller) return std::nullopt;
    for (const auto& c : enroller->candidates(id)) {
        if (!proves(c.key)) continue;
        switch (enroller->admit(id, c, address)) {
            case pairing::Admission::registered: {
                AuthResult ok;
                ok.code = ConnackCode::accepted;
                ok.device_id = std::string(id);
                ok.module_id = c.module_id;
                ok.key = c.key;
                ok.enrollment = c.enrollment;
                return ok;
            }
            case pairing::Admission::pending:
                return refuse(ConnackCode::not_authorized, "pairing_closed",
                              "device '" + std::string(id) + "' holds a key of enrollment " + c.enrollment +
                                  " but the pairing window is closed (pending: `hubgate devices approve` or "
                                  "`hubgate pair open`)");
            case pairing::Admission::failed:
                return refuse(ConnackCode::not_authorized, "pairing_failed",
                              "device '" + std::string(id) + "' of enrollment " + c.enrollment +
                                  " could not be registered");
        }
    }
    return std::nullopt;
}

// username = device id, password = the device's key text, compared in constant time. The client id
// is the device's own business (Tasmota: DVES_XXXXXX); the session is the device id's.
AuthResult authenticate_password(const Credentials& creds, DeviceDirectory& devices, pairing::Enroller* enroller,
                                 std::string_view address) {
    if (!creds.username || creds.username->empty())
        return refuse(ConnackCode::bad_username_or_password, "no_username",
                      "no username: auth = \"password\" needs the device id as the username");
    const std::string_view id = *creds.username;
    if (!is_hub_id(id))
        return refuse(ConnackCode::bad_username_or_password, "bad_username",
                      "username '" + std::string(id.substr(0, 64)) +
                          "' is not a device id (1-128 ASCII letters, digits and -.%_*?!(),:=@$')");
    if (!creds.password)
        return refuse(ConnackCode::bad_username_or_password, "no_password",
                      "no password: auth = \"password\" needs the device key as the password");
    const auto rec = devices.find(id);
    if (!rec || rec->key.empty()) {
        const std::string_view password = *creds.password;
        if (auto r = try_enrollment(id, enroller, address,
                                    [&](const std::string& key) { return constant_time_equal(password, key); }))
            return *r;
        return refuse(ConnackCode::not_authorized, "unknown_device", "unknown device '" + std::string(id) + "'");
    }
    if (!constant_time_equal(*creds.password, rec->key))
        return refuse(ConnackCode::not_authorized, "bad_password", "password is not the key of device '" +
                                                                       std::string(id) + "'");
    AuthResult ok;
    ok.code = ConnackCode::accepted;
    ok.device_id = std::string(id);
    ok.module_id = rec->module_id;
    ok.key = rec->key;
    return ok;
}

}  // namespace

AuthResult authenticate(const Credentials& creds, AuthMode mode, DeviceDirectory& devices, std::int64_t now_unix,
                        pairing::Enroller* enroller, std::string_view address) {
    if (mode == AuthMode::password) return authenticate_password(creds, devices, enroller, address);
    const std::string_view id = creds.client_id;
    if (!is_hub_id(id))
        return refuse(ConnackCode::identifier_rejected, "bad_client_id",
                      "client id '" + std::string(id.substr(0, 64)) +
                          "' is not a device id (1-128 ASCII letters, digits and -.%_*?!(),:=@$')");
    if (creds.username && device_id_from_username(*creds.username) != id)
        return refuse(ConnackCode::bad_username_or_password, "username_mismatch",
                      "username names device '" + std::string(device_id_from_username(*creds.username)) +
                          "' but the client id is '" + std::string(id) + "'");

    if (mode == AuthMode::none) {
        if (devices.record_seen(id) == DeviceDirectory::Seen::full)
            return refuse(ConnackCode::not_authorized, "seen_devices_full",
                          "the gateway keeps gateway.max_seen_devices ids from open listeners and is full; "
                          "`hubgate devices remove` forgets one (then reload)");
        AuthResult ok;
        ok.code = ConnackCode::accepted;
        ok.device_id = std::string(id);
        if (auto rec = devices.find(id)) ok.module_id = rec->module_id;
        return ok;
    }

    if (!creds.password)
        return refuse(ConnackCode::bad_username_or_password, "no_password",
                      "no password: a SAS token signed with the device key is required");
    auto token = parse_sas_token(*creds.password);
    if (!token)
        return refuse(ConnackCode::bad_username_or_password, "malformed_token",
                      "password is not a SAS token: " + token.error());
    // sr = {any host}/devices/{device_id}: the device part must be this device.
    const std::string& sr = token->sr;
    const std::string suffix = "/devices/" + std::string(id);
    const bool sr_matches = sr.size() > suffix.size() && sr.compare(sr.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!sr_matches)
        return refuse(ConnackCode::not_authorized, "wrong_resource",
                      "SAS token is for '" + sr + "', not '{host}" + suffix + "'");

    const auto rec = devices.find(id);
    if (!rec || rec->key.empty()) {
        // An expired token signed with a derived key is refused as expired below, never pending.
        std::optional<std::string> expired_with;
        auto r = try_enrollment(id, enroller, address, [&](const std::string& key) {
            const auto check = verify_sas_token(*token, key, now_unix);
            if (check == SasCheck::expired) expired_with = key;
            return check == SasCheck::ok;
        });
        if (r) {
            if (r->code == ConnackCode::accepted) r->expires_unix = token->se;
            return *r;
        }
        if (!expired_with)
            return refuse(ConnackCode::not_authorized, "unknown_device", "unknown device '" + std::string(id) + "'");
        return refuse(ConnackCode::not_authorized, "expired_token",
                      "SAS token expired at " + std::to_string(token->se) + " (now " + std::to_string(now_unix) + ")");
    }
    switch (verify_sas_token(*token, rec->key, now_unix)) {
        case SasCheck::ok: break;
        case SasCheck::bad_signature:
            return refuse(ConnackCode::not_authorized, "bad_signature", "SAS signature does not match the device key");
        case SasCheck::expired:
            return refuse(ConnackCode::not_authorized, "expired_token",
                          "SAS token expired at " + std::to_string(token->se) + " (now " + std::to_string(now_unix) + ")");
    }
    AuthResult ok;
    ok.code = ConnackCode::accepted;
    ok.device_id = std::string(id);
    ok.module_id = rec->module_id;
    ok.expires_unix = token->se;
    ok.key = rec->key;
    return ok;
}

}  // namespace hubgate::mqtt
