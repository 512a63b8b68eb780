#include <doctest/doctest.h>

#include "adapters/mqtt/auth.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/model/sas_token.hpp"

using namespace hubgate;
using namespace hubgate::mqtt;

namespace {

constexpr const char* kKey = "+XLy+MVZ+aTeOnVzN2kLeB16O+kSxmz6g3rS6fAf6rw=";
constexpr const char* kOtherKey = "cGFzc3dvcmRwYXNzd29yZA==";
constexpr std::int64_t kNow = 1800000000;

// A directory with one SAS device, dev-1 (module "thermo").
struct Devices : DeviceDirectory {
    Devices() { replace_static({{"dev-1", kKey, "thermo"}}); }
};

std::string token_for(const std::string& device, const char* key, std::int64_t expiry) {
    auto t = make_sas_token("myhub.local/devices/" + device, key, expiry);
    REQUIRE(t.ok());
    return t.value();
}

}  // namespace

TEST_CASE("a SAS token signed with the device key is accepted and carries its expiry and module") {
    Devices dirs;
    const auto token = token_for("dev-1", kKey, kNow + 3600);
    const auto r = authenticate({"dev-1", "myhub.local/dev-1/?api-version=2021-04-12", token}, AuthMode::sas, dirs, kNow);
    CHECK(r.code == ConnackCode::accepted);
    CHECK(r.device_id == "dev-1");
    CHECK(r.module_id == "thermo");
    CHECK(r.expires_unix == kNow + 3600);
}

TEST_CASE("a bare device id as username is accepted") {
    Devices dirs;
    const auto token = token_for("dev-1", kKey, kNow + 60);
    CHECK(authenticate({"dev-1", "dev-1", token}, AuthMode::sas, dirs, kNow).code == ConnackCode::accepted);
}

TEST_CASE("a bad signature with a valid expiry is refused with 0x05") {
    Devices dirs;
    const auto token = token_for("dev-1", kOtherKey, kNow + 3600);
    const auto r = authenticate({"dev-1", "h/dev-1/?api-version=1", token}, AuthMode::sas, dirs, kNow);
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "bad_signature");
}

TEST_CASE("an expired token with a valid signature is refused with 0x05") {
    Devices dirs;
    const auto token = token_for("dev-1", kKey, kNow - 1);
    const auto r = authenticate({"dev-1", "h/dev-1/", token}, AuthMode::sas, dirs, kNow);
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "expired_token");
}

TEST_CASE("an unknown device is refused with 0x05") {
    Devices dirs;
    const auto token = token_for("ghost", kKey, kNow + 60);
    const auto r = authenticate({"ghost", "h/ghost/", token}, AuthMode::sas, dirs, kNow);
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "unknown_device");
}

TEST_CASE("a token for another device's resource is refused with 0x05") {
    Devices dirs;
    dirs.replace_static({{"dev-1", kKey, ""}, {"dev-2", kKey, ""}});
    const auto token = token_for("dev-2", kKey, kNow + 60);
    const auto r = authenticate({"dev-1", "h/dev-1/", token}, AuthMode::sas, dirs, kNow);
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "wrong_resource");
}

TEST_CASE("a password that is not a SAS token is malformed credentials, 0x04") {
    Devices dirs;
    CHECK(authenticate({"dev-1", "h/dev-1/", "hunter2"}, AuthMode::sas, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
    CHECK(authenticate({"dev-1", "h/dev-1/", std::nullopt}, AuthMode::sas, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
}

TEST_CASE("a username naming another device than the client id is refused with 0x04") {
    Devices dirs;
    const auto token = token_for("dev-1", kKey, kNow + 60);
    CHECK(authenticate({"dev-1", "h/dev-2/?api-version=1", token}, AuthMode::sas, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
}

TEST_CASE("an empty or invalid client id is rejected with 0x02") {
    Devices dirs;
    CHECK(authenticate({"", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code ==
          ConnackCode::identifier_rejected);
    CHECK(authenticate({"a/b", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code ==
          ConnackCode::identifier_rejected);
}

TEST_CASE("auth none accepts any valid client id and records it as a known device") {
    Devices dirs;
    CHECK_FALSE(dirs.known("newcomer"));
    const auto r = authenticate({"newcomer", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow);
    CHECK(r.code == ConnackCode::accepted);
    CHECK(r.expires_unix == 0);
    CHECK(dirs.known("newcomer"));
}

TEST_CASE("auth none refuses a new id with 0x05 once max_seen_devices ids are held, and takes known ones") {
    Devices dirs;
    dirs.set_seen_limit(2);
    for (const char* id : {"open-1", "open-2"})
        CHECK(authenticate({id, std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code == ConnackCode::accepted);
    const auto full = authenticate({"open-3", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow);
    CHECK(full.code == ConnackCode::not_authorized);
    CHECK(std::string(full.counter_reason) == "seen_devices_full");
    CHECK(full.reason.find("max_seen_devices") != std::string::npos);
    CHECK_FALSE(dirs.known("open-3"));
    // Ids already held, and configured devices, do not count against the limit.
    CHECK(authenticate({"open-1", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code == ConnackCode::accepted);
    CHECK(authenticate({"dev-1", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code == ConnackCode::accepted);
    // A reload that forgot one (`hubgate devices remove`) makes room.
    dirs.replace_seen({"open-2"});
    CHECK(authenticate({"open-3", std::nullopt, std::nullopt}, AuthMode::none, dirs, kNow).code == ConnackCode::accepted);
    CHECK_FALSE(dirs.known("open-1"));
}

TEST_CASE("the device id is the second segment of a host-qualified username") {
    CHECK(device_id_from_username("hub.azure-devices.net/dev-7/?api-version=2021-04-12&DeviceClientType=x") == "dev-7");
    CHECK(device_id_from_username("dev-7") == "dev-7");
    CHECK(device_id_from_username("hub/dev-7") == "dev-7");
}
