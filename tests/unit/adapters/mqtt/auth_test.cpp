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

// ---- auth = "password" (commodity devices: username = device id, password = key text) ----------

TEST_CASE("password auth: username is the device id, password the key text, the client id is free") {
    Devices dirs;
    const auto r = authenticate({"DVES_A1B2C3", "dev-1", kKey}, AuthMode::password, dirs, kNow);
    CHECK(r.code == ConnackCode::accepted);
    CHECK(r.device_id == "dev-1");
    CHECK(r.module_id == "thermo");
    CHECK(r.expires_unix == 0);
}

TEST_CASE("password auth refuses a wrong key or an unknown device with 0x05, missing credentials with 0x04") {
    Devices dirs;
    const auto wrong = authenticate({"DVES_1", "dev-1", kOtherKey}, AuthMode::password, dirs, kNow);
    CHECK(wrong.code == ConnackCode::not_authorized);
    CHECK(std::string(wrong.counter_reason) == "bad_password");
    CHECK(wrong.reason.find(kOtherKey) == std::string::npos);  // never logs a key
    const auto unknown = authenticate({"DVES_1", "dev-9", kKey}, AuthMode::password, dirs, kNow);
    CHECK(unknown.code == ConnackCode::not_authorized);
    CHECK(std::string(unknown.counter_reason) == "unknown_device");
    CHECK(authenticate({"DVES_1", std::nullopt, kKey}, AuthMode::password, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
    CHECK(authenticate({"DVES_1", "dev-1", std::nullopt}, AuthMode::password, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
    CHECK(authenticate({"DVES_1", "not a device id", kKey}, AuthMode::password, dirs, kNow).code ==
          ConnackCode::bad_username_or_password);
}

TEST_CASE("password auth does not take a SAS token for the key") {
    Devices dirs;
    const auto token = token_for("dev-1", kKey, kNow + 3600);
    CHECK(authenticate({"dev-1", "dev-1", token}, AuthMode::password, dirs, kNow).code == ConnackCode::not_authorized);
}

TEST_CASE("a bridge speaks for the ids its children glob matches: * crosses /, ? is one character, case counts") {
    DeviceDirectory dirs;
    dirs.replace_static({{"z2m-bridge", kKey, "", "zb-*"}, {"lora-gw", kKey, "", "node-?" "?/*"}, {"plain", kKey, ""}});
    CHECK(dirs.may_speak_for("z2m-bridge", "zb-lamp"));
    CHECK(dirs.may_speak_for("z2m-bridge", "zb-"));
    CHECK(dirs.may_speak_for("z2m-bridge", "zb-room/lamp"));
    CHECK_FALSE(dirs.may_speak_for("z2m-bridge", "ZB-lamp"));
    CHECK_FALSE(dirs.may_speak_for("z2m-bridge", "kitchen"));
    CHECK(dirs.may_speak_for("lora-gw", "node-17/temp"));
    CHECK_FALSE(dirs.may_speak_for("lora-gw", "node-7/temp"));
    CHECK_FALSE(dirs.may_speak_for("plain", "plain-child"));
    CHECK_FALSE(dirs.may_speak_for("nobody", "zb-lamp"));
    CHECK(glob_match("*a*b*c", "xxaxxbxxcabc"));
    CHECK_FALSE(glob_match("*a*b*c", "xxaxxbxx"));
}

// ---- enrollment groups (pairing) -------------------------------------------------------------

#include "gateway/pairing/enroller.hpp"

namespace {

constexpr const char* kGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

// An enroller with one group whose admission answer the test sets; records what it was asked.
struct FakeEnroller : pairing::Enroller {
    pairing::Admission answer = pairing::Admission::registered;
    std::vector<std::string> admitted;
    std::string address;
    std::vector<pairing::Candidate> candidates(std::string_view id) const override {
        return {{"sensors", *derive_device_key(kGroupKey, id), "sens"}};
    }
    pairing::Admission admit(std::string_view id, const pairing::Candidate&, std::string_view addr) override {
        admitted.emplace_back(id);
        address = std::string(addr);
        return answer;
    }
};

}  // namespace

TEST_CASE("an unknown device with a SAS signed with its enrollment-derived key is admitted with the group's module") {
    Devices dirs;
    FakeEnroller enroller;
    const auto key = *derive_device_key(kGroupKey, "new-1");
    const auto r = authenticate({"new-1", "h/new-1/?api-version=1", token_for("new-1", key.c_str(), kNow + 60)},
                                AuthMode::sas, dirs, kNow, &enroller, "10.1.2.3");
    CHECK(r.code == ConnackCode::accepted);
    CHECK(r.module_id == "sens");
    CHECK(r.enrollment == "sensors");
    CHECK(r.expires_unix == kNow + 60);
    CHECK(enroller.admitted == std::vector<std::string>{"new-1"});
    CHECK(enroller.address == "10.1.2.3");
}

TEST_CASE("an enrolled device refused while the window is closed gets CONNACK 5 and a pairing_closed reason") {
    Devices dirs;
    FakeEnroller enroller;
    enroller.answer = pairing::Admission::pending;
    const auto key = *derive_device_key(kGroupKey, "new-1");
    const auto r = authenticate({"new-1", "new-1", token_for("new-1", key.c_str(), kNow + 60)}, AuthMode::sas, dirs,
                                kNow, &enroller, "10.1.2.3");
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "pairing_closed");
}

TEST_CASE("a SAS signed with a key from another group key is an unknown device and never reaches the enroller") {
    Devices dirs;
    FakeEnroller enroller;
    const auto wrong = *derive_device_key(kOtherKey, "new-1");
    const auto r = authenticate({"new-1", "new-1", token_for("new-1", wrong.c_str(), kNow + 60)}, AuthMode::sas, dirs,
                                kNow, &enroller, "10.1.2.3");
    CHECK(r.code == ConnackCode::not_authorized);
    CHECK(std::string(r.counter_reason) == "unknown_device");
    CHECK(enroller.admitted.empty());
}

TEST_CASE("an expired SAS signed with an enrollment-derived key is refused as expired, not pending") {
    Devices dirs;
    FakeEnroller enroller;
    const auto key = *derive_device_key(kGroupKey, "new-1");
    const auto r = authenticate({"new-1", "new-1", token_for("new-1", key.c_str(), kNow - 1)}, AuthMode::sas, dirs,
                                kNow, &enroller, "10.1.2.3");
    CHECK(std::string(r.counter_reason) == "expired_token");
    CHECK(enroller.admitted.empty());
}

TEST_CASE("auth = password: the enrollment-derived key as password admits an unknown device, a wrong one does not") {
    Devices dirs;
    FakeEnroller enroller;
    const auto key = *derive_device_key(kGroupKey, "plug-1");
    CHECK(authenticate({"DVES_1", "plug-1", key}, AuthMode::password, dirs, kNow, &enroller, "10.1.2.3").code ==
          ConnackCode::accepted);
    CHECK(authenticate({"DVES_1", "plug-2", key}, AuthMode::password, dirs, kNow, &enroller, "10.1.2.3").code ==
          ConnackCode::not_authorized);
    CHECK(enroller.admitted == std::vector<std::string>{"plug-1"});
}
