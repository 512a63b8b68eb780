// Pairing over the LAN against the real `hubgate run` (docs/pairing.md): devices holding a key derived
// from an [[enrollment]] group key (computed here with the openssl CLI, not hubgate's code) connect
// with mosquitto_pub (SAS, password) and coap-client-openssl (DTLS-PSK); `hubgate pair` and
// `hubgate devices pending|approve|key` act on the running gateway through its control socket.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/gateway.hpp"
#include "tests/support/paho_device.hpp"

using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
// Another group's key, not configured: what a device flashed for some other site holds.
constexpr const char* kWrongGroupKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// DPS's derivation with the openssl CLI: base64(HMAC-SHA256(base64decode(group key), id)).
std::string openssl_derived_key(const std::string& group_key, const std::string& id) {
    const auto r = run({"sh", "-c",
                        "printf %s \"$1\" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf %s \"$2\" | base64 -d | "
                        "od -An -v -tx1 | tr -d ' \\n') -binary | base64",
                        "sh", id, group_key});
    REQUIRE(r.exit_code == 0);
    std::string key = r.output;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    REQUIRE(key.size() == 44);
    return key;
}

struct Rig {
    TempDir dir;
    std::uint16_t metrics_port = free_tcp_port();
    std::uint16_t sas_port = free_tcp_port();
    std::uint16_t password_port = free_tcp_port();
    std::uint16_t coaps_port = free_udp_port();
    std::string config_text = minimal_config(
        dir, metrics_port,
        listener_toml("mqtt", sas_port, "sas", "edge") + listener_toml("mqtt", password_port, "password", "edge") +
            "[[listener]]\nprotocol = \"coaps\"\nbind = \"127.0.0.1:" + std::to_string(coaps_port) +
            "\"\nauth = \"psk\"\n\n[pairing]\nwindow_seconds = 120\n\n[[enrollment]]\nid = \"sensors\"\nkey = \"" +
            kGroupKey + "\"\nmodule_id = \"sensors-module\"\n");
    std::unique_ptr<Gateway> gw;

    void start() {
        gw = std::make_unique<Gateway>(dir, config_text, metrics_port);
        REQUIRE(gw->wait_ready());
    }

    RunResult cli(std::vector<std::string> args) const {
        std::vector<std::string> argv{HUBGATE_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"-c", dir.path() + "/hubgate.toml"});
        return run(argv);
    }

    // QoS 1 on the SAS listener with a token signed with `key`; exit 0 = PUBACK received.
    RunResult publish_sas(const std::string& id, const std::string& key) const {
        return mosquitto_pub(sas_port, id, device_token(id, key),
                             {"-q", "1", "-m", "{\"t\":21}", "-t", "devices/" + id + "/messages/events/"});
    }
    // auth = "password": username = device id, password = the key text; a free client id.
    RunResult publish_password(const std::string& id, const std::string& key) const {
        return run({"mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(password_port), "-i",
                    "DVES_" + id, "-u", id, "-P", key, "-q", "1", "-m", "on", "-t",
                    "devices/" + id + "/messages/events/"});
    }
    // One DTLS-PSK POST with coap-client-openssl (identity = id, PSK = the key text).
    RunResult post_coaps(const std::string& id, const std::string& key) const {
        return run({"coap-client-openssl", "-m", "post", "-B", "5", "-e", "{\"t\":22}", "-u", id, "-k", key,
                    "coaps://127.0.0.1:" + std::to_string(coaps_port) + "/devices/" + id + "/messages/events"});
    }

    std::string pending() const {
        const auto r = cli({"devices", "pending"});
        INFO(r.output);
        CHECK(r.exit_code == 0);
        return r.output;
    }
    std::string listed() const { return cli({"devices", "list"}).output; }
};

bool has_line_starting(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(prefix, 0) == 0) return true;
    return false;
}

// "dev-1  sensors  127.0.0.1  2026-...Z  2026-...Z  2" -> the words.
std::vector<std::string> pending_row(const std::string& text, const std::string& id) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string x; words >> x;) w.push_back(x);
        if (!w.empty() && w[0] == id) return w;
    }
    return {};
}

}  // namespace

TEST_CASE("devices key prints the key DPS's group derivation gives, as openssl computes it") {
    Rig rig;
    rig.dir.write("hubgate.toml", rig.config_text);
    const auto r = rig.cli({"devices", "key", "dev-1", "--enrollment", "sensors"});
    CHECK(r.exit_code == 0);
    CHECK(r.output == openssl_derived_key(kGroupKey, "dev-1") + "\n");
    CHECK(rig.cli({"devices", "key", "dev-1", "--enrollment", "nope"}).exit_code == 1);
}

TEST_CASE("pair and the pending commands with no gateway running exit 3 and say so") {
    Rig rig;
    rig.dir.write("hubgate.toml", rig.config_text);
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"pair", "status"}, {"pair", "open"}, {"pair", "close"}, {"devices", "pending"}, {"devices", "approve", "x"}}) {
        const auto r = rig.cli(args);
        INFO(args[0], " ", args[1], ": ", r.output);
        CHECK(r.exit_code == 3);
        CHECK(r.output.find("hubgate is not running") != std::string::npos);
    }
}

TEST_CASE("an MQTT device with a derived SAS key: refused and pending while closed, registered while open, kept after a restart") {
    Rig rig;
    rig.start();
    const std::string key1 = openssl_derived_key(kGroupKey, "dev-1");
    const std::string key2 = openssl_derived_key(kGroupKey, "dev-2");

    CHECK(rig.cli({"pair", "status"}).output == "closed\n");
    CHECK(rig.gw->metric("hubgate_pairing_window_open") == 0);
    auto refused = rig.publish_sas("dev-1", key1);
    CHECK(refused.exit_code != 0);
    CHECK(refused.output.find("not authorised") != std::string::npos);  // CONNACK 5
    rig.publish_sas("dev-1", key1);
    const std::string pending = rig.pending();
    CHECK(pending.rfind("ID", 0) == 0);
    CHECK(pending.find("ENROLLMENT  ADDRESS") != std::string::npos);
    const auto row = pending_row(pending, "dev-1");
    REQUIRE(row.size() == 6);
    CHECK(row[1] == "sensors");
    CHECK(row[2] == "127.0.0.1");
    CHECK(row[3].size() == 20);
    CHECK(row[3].back() == 'Z');
    CHECK(row[5] == "2");
    CHECK(rig.gw->metric("hubgate_pairing_pending_devices") == 1);

    const auto opened = rig.cli({"pair", "open", "--for", "60"});
    CHECK(opened.exit_code == 0);
    CHECK(opened.output.rfind("open 60 s left", 0) == 0);
    CHECK(rig.cli({"pair", "status"}).output.rfind("open ", 0) == 0);
    CHECK(rig.gw->metric("hubgate_pairing_window_open") == 1);
    CHECK(rig.cli({"status"}).output.find("pairing:    open") != std::string::npos);

    const auto accepted = rig.publish_sas("dev-1", key1);
    INFO(accepted.output);
    CHECK(accepted.exit_code == 0);
    CHECK(has_line_starting(rig.listed(), "dev-1  registry  sensors-module  sensors"));
    CHECK(pending_row(rig.pending(), "dev-1").empty());  // vanished once registered
    CHECK(rig.gw->metric("hubgate_pairing_registered_total{enrollment=\"sensors\"}") == 1);

    CHECK(rig.cli({"pair", "close"}).output == "closed\n");
    CHECK(rig.publish_sas("dev-2", key2).exit_code != 0);
    CHECK(pending_row(rig.pending(), "dev-2").size() == 6);
    CHECK(rig.publish_sas("dev-1", key1).exit_code == 0);  // registered: no window needed

    // A restart: the window starts closed; dev-1 is a registered device, dev-2 is still refused.
    CHECK(rig.gw->stop() == 0);
    rig.gw->start();
    REQUIRE(rig.gw->wait_ready());
    CHECK(rig.cli({"pair", "status"}).output == "closed\n");
    CHECK(rig.publish_sas("dev-1", key1).exit_code == 0);
    CHECK(rig.publish_sas("dev-2", key2).exit_code != 0);
}

TEST_CASE("a CoAP device with a derived DTLS PSK: refused and pending while closed, registered while open") {
    Rig rig;
    rig.start();
    const std::string key = openssl_derived_key(kGroupKey, "coap-1");
    // The handshake completes (a PSK server cannot tell the key earlier), then the gateway ends the
    // session before serving anything: coap-client cannot send (or, if its request won the race,
    // gets 4.01).
    const auto refused = rig.post_coaps("coap-1", key);
    INFO(refused.output);
    CHECK((refused.output.find("cannot send") != std::string::npos || refused.output.find("4.01") != std::string::npos));
    CHECK_FALSE(rig.gw->metric("hubgate_coap_requests_total{code=\"2.04\"}") >= 1);
    const auto row = pending_row(rig.pending(), "coap-1");
    REQUIRE(row.size() == 6);
    CHECK(row[1] == "sensors");
    CHECK(row[2] == "127.0.0.1");

    CHECK(rig.cli({"pair", "open"}).output.rfind("open 120 s left", 0) == 0);  // [pairing] window_seconds
    const auto accepted = rig.post_coaps("coap-1", key);
    INFO(accepted.output);
    CHECK(accepted.exit_code == 0);
    CHECK(accepted.output.find("4.") == std::string::npos);
    CHECK(accepted.output.find("5.") == std::string::npos);
    CHECK(has_line_starting(rig.listed(), "coap-1  registry  sensors-module  sensors"));
    CHECK(rig.gw->metric("hubgate_coap_requests_total{code=\"2.04\"}") == 1);

    CHECK(rig.cli({"pair", "close"}).exit_code == 0);
    const auto again = rig.post_coaps("coap-1", key);  // registered: the window does not matter
    CHECK(again.exit_code == 0);
    CHECK(again.output.find("cannot send") == std::string::npos);
    CHECK(again.output.find("4.01") == std::string::npos);
    const auto second = rig.post_coaps("coap-2", openssl_derived_key(kGroupKey, "coap-2"));
    CHECK((second.output.find("cannot send") != std::string::npos || second.output.find("4.01") != std::string::npos));
    CHECK(pending_row(rig.pending(), "coap-2").size() == 6);
    CHECK(rig.gw->metric("hubgate_coap_requests_total{code=\"2.04\"}") == 2);
}

TEST_CASE("a key from a wrong group key never registers, even while the window is open") {
    Rig rig;
    rig.start();
    CHECK(rig.cli({"pair", "open"}).exit_code == 0);
    const std::string wrong = openssl_derived_key(kWrongGroupKey, "intruder");
    CHECK(rig.publish_sas("intruder", wrong).exit_code != 0);
    CHECK(rig.publish_password("intruder", wrong).exit_code != 0);
    const auto coap = rig.post_coaps("intruder", wrong);
    CHECK(coap.output.find("2.04") == std::string::npos);
    CHECK(rig.listed().find("intruder") == std::string::npos);
    CHECK(pending_row(rig.pending(), "intruder").empty());
    CHECK(rig.gw->metric("hubgate_pairing_registered_total{enrollment=\"sensors\"}") != 1);
}

TEST_CASE("approve registers a pending device at once, and it connects with the window closed") {
    Rig rig;
    rig.start();
    const std::string key = openssl_derived_key(kGroupKey, "plug-1");
    CHECK(rig.publish_password("plug-1", key).exit_code != 0);
    REQUIRE(pending_row(rig.pending(), "plug-1").size() == 6);
    const auto approved = rig.cli({"devices", "approve", "plug-1"});
    CHECK(approved.exit_code == 0);
    CHECK(approved.output == "approved device plug-1 (enrollment sensors)\n");
    CHECK(pending_row(rig.pending(), "plug-1").empty());
    CHECK(has_line_starting(rig.listed(), "plug-1  registry  sensors-module  sensors"));
    CHECK(rig.cli({"pair", "status"}).output == "closed\n");
    CHECK(rig.publish_password("plug-1", key).exit_code == 0);
    const auto again = rig.cli({"devices", "approve", "plug-1"});
    CHECK(again.exit_code == 1);
    CHECK(rig.cli({"devices", "approve", "nobody"}).exit_code == 1);
}

TEST_CASE("repeated failed authentication from one address is slowed down, a correct credential is not") {
    Rig rig;
    rig.start();
    // Delays 0, 0, 250, 500, 1000, 2000 ms: the sixth refusal takes at least 2 s.
    std::chrono::steady_clock::duration sixth{};
    for (int i = 0; i < 6; ++i) {
        const auto t = std::chrono::steady_clock::now();
        CHECK(rig.publish_password("guess", "not-the-key").exit_code != 0);
        sixth = std::chrono::steady_clock::now() - t;
    }
    CHECK(sixth >= 2s);
    CHECK(rig.gw->metric("hubgate_auth_delayed_total") == 4);
    CHECK(rig.gw->metric("hubgate_auth_delay_milliseconds_total") == 3750);
    // The same address with a right key (register = window: approve it first) is answered at once.
    CHECK(rig.cli({"pair", "open"}).exit_code == 0);
    const auto t = std::chrono::steady_clock::now();
    CHECK(rig.publish_password("good-1", openssl_derived_key(kGroupKey, "good-1")).exit_code == 0);
    // Well under the 4 s a seventh refusal would wait (loose: a loaded CI machine, a durable commit).
    CHECK(std::chrono::steady_clock::now() - t < 3000ms);
    CHECK(rig.gw->metric("hubgate_auth_delayed_total") == 4);
}

// Terminal half blocks back into pixels: each character is two modules (upper, lower), drawn when
// light; scaled 4x into a PGM that zbarimg (a real QR decoder) reads.
namespace {
std::string terminal_qr_to_pgm(const std::vector<std::string>& lines) {
    std::vector<std::vector<bool>> rows;
    for (const auto& line : lines) {
        std::vector<bool> top, bottom;
        for (std::size_t i = 0; i < line.size();) {
            const std::string_view rest(line.data() + i, line.size() - i);
            if (rest.rfind("\u2588", 0) == 0) top.push_back(true), bottom.push_back(true), i += 3;
            else if (rest.rfind("\u2580", 0) == 0) top.push_back(true), bottom.push_back(false), i += 3;
            else if (rest.rfind("\u2584", 0) == 0) top.push_back(false), bottom.push_back(true), i += 3;
            else top.push_back(false), bottom.push_back(false), i += 1;
        }
        rows.push_back(top);
        rows.push_back(bottom);
    }
    constexpr std::size_t kScale = 4;
    const std::size_t w = rows.empty() ? 0 : rows[0].size();
    std::string pgm = "P5 " + std::to_string(w * kScale) + " " + std::to_string(rows.size() * kScale) + " 255\n";
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t x = 0; x < w; ++x) line.append(kScale, x < r.size() && r[x] ? '\xff' : '\0');
        for (std::size_t k = 0; k < kScale; ++k) pgm += line;
    }
    return pgm;
}
}  // namespace

TEST_CASE("devices add --qr also draws the connection string as a QR code that zbarimg decodes") {
    Rig rig;
    rig.dir.write("hubgate.toml", rig.config_text);
    const auto r = run({HUBGATE_BINARY, "devices", "add", "qr-1", "--qr", "--host", "gw.test", "-c",
                        rig.dir.path() + "/hubgate.toml"});
    REQUIRE(r.exit_code == 0);
    std::istringstream in(r.output);
    std::string connection_string;
    std::vector<std::string> drawing;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("HostName=", 0) == 0) connection_string = line;
        else if (line.find("\u2588") != std::string::npos || line.find("\u2580") != std::string::npos)
            drawing.push_back(line);
    }
    REQUIRE(connection_string.rfind("HostName=gw.test;DeviceId=qr-1;SharedAccessKey=", 0) == 0);
    REQUIRE(drawing.size() > 10);
    const std::string image = rig.dir.write("qr.pgm", terminal_qr_to_pgm(drawing));
    const auto decoded = run({"zbarimg", "-q", "--raw", "--nodbus", image});
    INFO(decoded.output);
    CHECK(decoded.output.find(connection_string + "\n") != std::string::npos);
}
