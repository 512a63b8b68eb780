#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate::config;
using hubgate::test::TempDir;

namespace {

const std::string kKey = "aHViZ2F0ZS1leGFtcGxlLWtleS1ub3QtYS1zZWNyZXQ=";  // 32 bytes
const std::string kConnectionString = "HostName=hub.example.net;DeviceId=gw-up;SharedAccessKey=" + kKey;

// The smallest valid file: one listener and the upstream identity. Four lines; tests append after it.
const std::string kMinimal =
    "[[listener]]\n"
    "protocol = \"mqtt\"\n"
    "[upstream]\n"
    "connection_string = \"" + kConnectionString + "\"\n";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// 1-based line of the first occurrence of `needle`, computed from the text itself.
int line_of(const std::string& text, const std::string& needle) {
    const auto at = text.find(needle);
    REQUIRE(at != std::string::npos);
    int line = 1;
    for (std::size_t i = 0; i < at; ++i)
        if (text[i] == '\n') ++line;
    return line;
}

struct Loaded {
    std::string file;
    LoadResult result;
};

Loaded load_text(const TempDir& dir, const std::string& text) {
    const std::string file = dir.write("hubgate.toml", text);
    return {file, load_config(file)};
}

// The single error, checked to start with exactly "FILE:LINE: ".
std::string only_error_at(const Loaded& l, int line) {
    REQUIRE_FALSE(l.result.config.has_value());
    REQUIRE(l.result.errors.size() == 1);
    const std::string rendered = l.result.errors[0].to_string();
    const std::string prefix = l.file + ":" + std::to_string(line) + ": ";
    CHECK_MESSAGE(rendered.rfind(prefix, 0) == 0, rendered);
    CHECK(l.result.errors[0].line == line);
    return l.result.errors[0].what;
}

const Config& config_of(const Loaded& l) {
    if (!l.result.errors.empty()) FAIL_CHECK(l.result.errors[0].to_string());
    REQUIRE(l.result.config.has_value());
    return *l.result.config;
}

}  // namespace

TEST_CASE("the documented example config/hubgate.toml loads without errors") {
    const auto r = load_config(std::string(HUBGATE_SOURCE_DIR) + "/config/hubgate.toml");
    for (const auto& e : r.errors) FAIL_CHECK(e.to_string());
    REQUIRE(r.config.has_value());
    const Config& c = *r.config;
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].protocol == Protocol::mqtt);
    CHECK(c.listeners[0].auth == ListenerAuth::sas);
    CHECK(c.upstream.profile == UpstreamProfile::azure_iot_hub);
    REQUIRE(c.upstream.connection_string.has_value());
    CHECK(c.upstream.gateway_device_id == c.upstream.connection_string->device_id);
    REQUIRE(c.devices.size() == 1);
    CHECK(c.devices[0].id == "sensor-1");
}

TEST_CASE("a minimal file gets every default") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal);
    const Config& c = config_of(l);
    CHECK(c.file == l.file);
    CHECK(c.gateway.id == "gw-01");
    CHECK(c.gateway.data_dir == "/var/lib/hubgate");
    CHECK(c.gateway.log_level == "info");
    CHECK(c.gateway.max_seen_devices == 10000);

    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].bind.host == "0.0.0.0");
    CHECK(c.listeners[0].bind.port == 1883);
    CHECK(c.listeners[0].auth == ListenerAuth::sas);
    CHECK(c.listeners[0].module_id.empty());
    CHECK(c.listeners[0].connect_timeout_seconds == 10);
    CHECK(c.listeners[0].line == 1);

    CHECK(c.upstream.profile == UpstreamProfile::azure_iot_hub);
    REQUIRE(c.upstream.connection_string.has_value());
    CHECK(c.upstream.connection_string->host_name == "hub.example.net");
    CHECK(c.upstream.gateway_device_id == "gw-up");
    CHECK(c.upstream.batch);
    CHECK(c.upstream.max_batch_bytes == 262144);
    CHECK(c.upstream.max_batch_delay_ms == 50);
    CHECK(c.upstream.ca_file.empty());

    CHECK(c.store.path == "/var/lib/hubgate/hubgate.db");
    CHECK(c.store.max_bytes == 1073741824);
    CHECK(c.store.max_messages == 10000000);
    CHECK(c.store.ttl_seconds == 604800);
    CHECK(c.store.on_full == OnFull::drop_oldest);
    CHECK(c.store.durability == Durability::power);
    CHECK(c.store.commit_window_ms == 100);

    CHECK(c.c2d.queue_depth == 50);
    CHECK(c.c2d.max_delivery_count == 10);
    CHECK(c.c2d.default_ttl_seconds == 3600);
    CHECK(c.c2d.lock_timeout_seconds == 60);
    CHECK(c.c2d.feedback_max_records == 64);
    CHECK(c.c2d.feedback_max_delay_ms == 15000);

    CHECK(c.metrics.bind.to_string() == "127.0.0.1:9464");
    CHECK(c.devices.empty());
}

TEST_CASE("listeners without bind or auth get their protocol's port and auth") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal +
                                      "[[listener]]\nprotocol = \"mqtts\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
                                      "[[listener]]\nprotocol = \"coap\"\n"
                                      "[[listener]]\nprotocol = \"coaps\"\n");
    const Config& c = config_of(l);
    REQUIRE(c.listeners.size() == 4);
    CHECK(c.listeners[1].bind.to_string() == "0.0.0.0:8883");
    CHECK(c.listeners[1].auth == ListenerAuth::sas);
    CHECK(c.listeners[2].bind.to_string() == "0.0.0.0:5683");
    CHECK(c.listeners[2].auth == ListenerAuth::none);
    CHECK(c.listeners[3].bind.to_string() == "0.0.0.0:5684");
    CHECK(c.listeners[3].auth == ListenerAuth::psk);
}

TEST_CASE("an unknown key reports its own line and the keys allowed in its table") {
    TempDir dir;
    const std::string text = "[gateway]\nid = \"gw\"\n\nlog_levl = \"debug\"\n" + kMinimal;
    const auto what = only_error_at(load_text(dir, text), 4);
    CHECK(contains(what, "\"log_levl\""));
    CHECK(contains(what, "[gateway]"));
    CHECK(contains(what, "id, data_dir, log_level"));
}

TEST_CASE("an unknown key inside a [[listener]] and at the top level are both reported") {
    TempDir dir;
    const std::string text = kMinimal + "[[listener]]\nprotocol = \"coap\"\nport = 5683\n[extra]\na = 1\n";
    const auto l = load_text(dir, text);
    REQUIRE(l.result.errors.size() == 2);
    CHECK(l.result.errors[0].line == line_of(text, "port ="));
    CHECK(contains(l.result.errors[0].what, "\"port\""));
    CHECK(contains(l.result.errors[0].what, "protocol, bind, auth, module_id, tls_cert, tls_key, connect_timeout_seconds"));
    CHECK(l.result.errors[1].line == line_of(text, "[extra]"));
    CHECK(contains(l.result.errors[1].what, "\"extra\""));
    CHECK(contains(l.result.errors[1].what, "gateway, listener, upstream, store, c2d, metrics, discovery, device"));
}

TEST_CASE("an unknown sub-table is an unknown key at the line of its header") {
    TempDir dir;
    const std::string text = kMinimal + "[store.tuning]\ncache = 1\n";
    const auto what = only_error_at(load_text(dir, text), 5);
    CHECK(contains(what, "\"tuning\""));
    CHECK(contains(what, "[store]"));
}

TEST_CASE("a value of the wrong type is refused, naming the key and the expected type") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "batch = \"yes\"\n"), 5);
    CHECK(contains(what, "upstream.batch"));
    CHECK(contains(what, "boolean"));
    CHECK(contains(what, "string"));
}

TEST_CASE("a section that is not a table is a type error") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, "store = 5\n" + kMinimal), 1);
    CHECK(contains(what, "store"));
    CHECK(contains(what, "table"));
}

TEST_CASE("max_batch_bytes outside 1024..262144 is out of range") {
    TempDir dir;
    for (const char* value : {"1023", "262145"}) {
        const auto what = only_error_at(load_text(dir, kMinimal + "max_batch_bytes = " + value + "\n"), 5);
        CHECK(contains(what, "upstream.max_batch_bytes"));
        CHECK(contains(what, value));
        CHECK(contains(what, "between 1024 and 262144"));
    }
}

TEST_CASE("max_batch_delay_ms above 60000 is out of range and 0 is allowed") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "max_batch_delay_ms = 60001\n"), 5);
    CHECK(contains(what, "upstream.max_batch_delay_ms"));
    const auto zero = load_text(dir, kMinimal + "max_batch_delay_ms = 0\n");
    CHECK(config_of(zero).upstream.max_batch_delay_ms == 0);
}

TEST_CASE("gateway.max_seen_devices takes 0..1000000") {
    TempDir dir;
    const auto zero = load_text(dir, "[gateway]\nmax_seen_devices = 0\n" + kMinimal);
    CHECK(config_of(zero).gateway.max_seen_devices == 0);
    const auto what = only_error_at(load_text(dir, "[gateway]\nmax_seen_devices = 1000001\n" + kMinimal), 2);
    CHECK(contains(what, "gateway.max_seen_devices"));
    CHECK(contains(what, "between 0 and 1000000"));
}

TEST_CASE("a negative integer is an out-of-range error") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "[c2d]\nlock_timeout_seconds = -5\n"), 6);
    CHECK(contains(what, "c2d.lock_timeout_seconds"));
    CHECK(contains(what, "-5"));
    CHECK(contains(what, "out of range"));
}

TEST_CASE("integers that overflow the target type are out-of-range errors") {
    TempDir dir;
    // 2^32 does not fit the 32-bit field.
    auto what = only_error_at(load_text(dir, kMinimal + "[c2d]\nfeedback_max_delay_ms = 4294967296\n"), 6);
    CHECK(contains(what, "c2d.feedback_max_delay_ms"));
    CHECK(contains(what, "out of range"));
    // Beyond 64 bits: toml11 clamps it; the loader still refuses it and shows what was written.
    what = only_error_at(load_text(dir, kMinimal + "[store]\nmax_bytes = 99999999999999999999\n"), 6);
    CHECK(contains(what, "store.max_bytes"));
    CHECK(contains(what, "99999999999999999999"));
}

TEST_CASE("store.commit_window_ms is read, 0 turns the window off, and over 1000 ms is refused at its line") {
    TempDir dir;
    auto loaded = load_text(dir, kMinimal + "[store]\ncommit_window_ms = 0\n");
    REQUIRE(loaded.result.config);
    CHECK(loaded.result.config->store.commit_window_ms == 0);
    const auto what = only_error_at(load_text(dir, kMinimal + "[store]\ncommit_window_ms = 1001\n"), 6);
    CHECK(contains(what, "store.commit_window_ms"));
}

TEST_CASE("a bad enum value lists the allowed values") {
    TempDir dir;
    SUBCASE("store.on_full") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[store]\non_full = \"drop-newest\"\n"), 6);
        CHECK(contains(what, "store.on_full"));
        CHECK(contains(what, "drop-oldest, reject-new"));
    }
    SUBCASE("store.durability") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[store]\ndurability = \"disk\"\n"), 6);
        CHECK(contains(what, "store.durability"));
        CHECK(contains(what, "power, process"));
    }
    SUBCASE("listener.protocol") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"http\"\n"), 6);
        CHECK(contains(what, "listener.protocol"));
        CHECK(contains(what, "mqtt, mqtts, coap, coaps"));
    }
    SUBCASE("upstream.profile") {
        const auto what = only_error_at(load_text(dir, kMinimal + "profile = \"aws\"\n"), 5);
        CHECK(contains(what, "upstream.profile"));
        CHECK(contains(what, "azure-iot-hub, mqtt"));
    }
    SUBCASE("gateway.log_level") {
        const auto what = only_error_at(load_text(dir, "[gateway]\nlog_level = \"verbose\"\n" + kMinimal), 2);
        CHECK(contains(what, "gateway.log_level"));
        CHECK(contains(what, "trace, debug, info, warn, error"));
    }
}

TEST_CASE("a listener without protocol is refused at its table line") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nbind = \"0.0.0.0:1\"\n"), 5);
    CHECK(contains(what, "listener.protocol is required"));
}

TEST_CASE("a file without any listener is valid and has no listeners") {
    TempDir dir;
    const auto l = load_text(dir, "[upstream]\nconnection_string = \"" + kConnectionString + "\"\n");
    CHECK(config_of(l).listeners.empty());
}

TEST_CASE("auth must suit the protocol: coap takes only none, coaps only psk, mqtt sas, password or none") {
    TempDir dir;
    SUBCASE("coap with sas") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coap\"\nauth = \"sas\"\n"), 7);
        CHECK(contains(what, "listener.auth"));
        CHECK(contains(what, "coap"));
        CHECK(contains(what, "allowed values: none"));
    }
    SUBCASE("coaps with none") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coaps\"\nauth = \"none\"\n"), 7);
        CHECK(contains(what, "allowed values: psk"));
    }
    SUBCASE("mqtt with psk") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"mqtt\"\nbind = \"0.0.0.0:1884\"\nauth = \"psk\"\n"), 8);
        CHECK(contains(what, "allowed values: sas, password, none"));
    }
    SUBCASE("mqtt with none is accepted") {
        const auto l = load_text(dir, kMinimal + "[[listener]]\nprotocol = \"mqtt\"\nbind = \"0.0.0.0:1884\"\nauth = \"none\"\n");
        CHECK(config_of(l).listeners[1].auth == ListenerAuth::none);
    }
}

TEST_CASE("an mqtts listener requires tls_cert and tls_key") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal + "[[listener]]\nprotocol = \"mqtts\"\n");
    REQUIRE(l.result.errors.size() == 2);
    for (const auto& e : l.result.errors) CHECK(e.line == 5);
    CHECK(contains(l.result.errors[0].what, "listener.tls_cert"));
    CHECK(contains(l.result.errors[1].what, "listener.tls_key"));
}

TEST_CASE("tls_cert on a listener that is not mqtts is refused") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coaps\"\ntls_cert = \"c.pem\"\n"), 7);
    CHECK(contains(what, "listener.tls_cert"));
}

TEST_CASE("connect_timeout_seconds is read for mqtt, must be 1..3600 and is refused on coap") {
    TempDir dir;
    const auto ok = load_text(dir, kMinimal + "[[listener]]\nprotocol = \"mqtt\"\nbind = \"0.0.0.0:1884\"\n"
                                              "connect_timeout_seconds = 30\n");
    CHECK(config_of(ok).listeners.at(1).connect_timeout_seconds == 30);

    auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"mqtt\"\nbind = \"0.0.0.0:1884\"\n"
                                                        "connect_timeout_seconds = 0\n"),
                              8);
    CHECK(contains(what, "listener.connect_timeout_seconds"));
    CHECK(contains(what, "between 1 and 3600"));

    what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coap\"\nconnect_timeout_seconds = 5\n"), 7);
    CHECK(contains(what, "listener.connect_timeout_seconds"));
    CHECK(contains(what, "coap"));
}

TEST_CASE("bind must be host:port or [v6]:port with a port in 1..65535") {
    TempDir dir;
    for (const char* bad : {"0.0.0.0", "0.0.0.0:0", "0.0.0.0:65536", ":1883", "::1:1883", "0.0.0.0:http", "[::1]1883"}) {
        CAPTURE(bad);
        const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\nbind = \"" + std::string(bad) +
                                                           "\"\n[upstream]\nconnection_string = \"" +
                                                           kConnectionString + "\"\n"),
                                        3);
        CHECK(contains(what, "listener.bind"));
    }
    const auto v6 = load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\nbind = \"[::1]:1883\"\n[upstream]\n"
                                   "connection_string = \"" + kConnectionString + "\"\n");
    const Config& c = config_of(v6);
    CHECK(c.listeners[0].bind.host == "::1");
    CHECK(c.listeners[0].bind.port == 1883);
    CHECK(c.listeners[0].bind.to_string() == "[::1]:1883");
}

TEST_CASE("two listeners on the same bind and transport are refused, naming the first one's line") {
    TempDir dir;
    const std::string text = kMinimal + "[[listener]]\nprotocol = \"mqtts\"\nbind = \"0.0.0.0:1883\"\n"
                                        "tls_cert = \"c\"\ntls_key = \"k\"\n";
    const auto what = only_error_at(load_text(dir, text), line_of(text, "bind ="));
    CHECK(contains(what, "duplicate listener bind 0.0.0.0:1883"));
    CHECK(contains(what, "line 1"));
}

TEST_CASE("a duplicate from two default binds is reported at the second listener's table") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "\n[[listener]]\nprotocol = \"mqtt\"\n"), 6);
    CHECK(contains(what, "duplicate listener bind 0.0.0.0:1883"));
    CHECK(contains(what, "line 1"));
}

TEST_CASE("the same host:port on TCP and on UDP is not a duplicate") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coap\"\nbind = \"0.0.0.0:1883\"\n");
    CHECK(config_of(l).listeners.size() == 2);
}

TEST_CASE("the azure-iot-hub profile requires connection_string") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\nbatch = true\n"), 3);
    CHECK(contains(what, "upstream.connection_string is required"));
}

TEST_CASE("a file without [upstream] is refused for lacking the connection string, with no line") {
    TempDir dir;
    const auto l = load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n");
    REQUIRE(l.result.errors.size() == 1);
    CHECK(l.result.errors[0].line == 0);
    CHECK(contains(l.result.errors[0].what, "upstream.connection_string is required"));
}

TEST_CASE("a float where an integer is expected is a type error") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "[c2d]\nqueue_depth = 1.5\n"), 6);
    CHECK(contains(what, "c2d.queue_depth"));
    CHECK(contains(what, "must be an integer, not a float"));
}

TEST_CASE("[[listener]] written as a plain value is a type error") {
    TempDir dir;
    const std::string text = "listener = 3\n[upstream]\nconnection_string = \"" + kConnectionString + "\"\n";
    const auto what = only_error_at(load_text(dir, text), 1);
    CHECK(contains(what, "[[listener]]"));
}

TEST_CASE("a malformed connection string is refused at its line with the parser's reason") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\n"
                                                   "connection_string = \"HostName=h;DeviceId=d\"\n"),
                                    4);
    CHECK(contains(what, "upstream.connection_string"));
    CHECK(contains(what, "lacks SharedAccessKey"));
}

TEST_CASE("an upstream connection string naming a module is refused") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\n"
                                                   "connection_string = \"" + kConnectionString + ";ModuleId=m\"\n"),
                                    4);
    CHECK(contains(what, "module"));
}

TEST_CASE("the azure-iot-hub profile refuses the mqtt profile's keys") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "url = \"tcp://127.0.0.1:1883\"\n"), 5);
    CHECK(contains(what, "upstream.url"));
    CHECK(contains(what, "profile mqtt"));
}

TEST_CASE("the mqtt profile takes url, client_id defaults to gateway.id, {gw} is gateway.id") {
    TempDir dir;
    const auto l = load_text(dir, "[gateway]\nid = \"edge-7\"\n[[listener]]\nprotocol = \"mqtt\"\n[upstream]\n"
                                  "profile = \"mqtt\"\nurl = \"tcp://127.0.0.1:1883\"\n");
    const Config& c = config_of(l);
    CHECK(c.upstream.profile == UpstreamProfile::mqtt);
    CHECK(c.upstream.url == "tcp://127.0.0.1:1883");
    CHECK(c.upstream.client_id == "edge-7");
    CHECK(c.upstream.gateway_device_id == "edge-7");
    CHECK_FALSE(c.upstream.connection_string.has_value());
}

TEST_CASE("an explicit client_id is kept and does not change {gw}") {
    TempDir dir;
    const auto l = load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\nprofile = \"mqtt\"\n"
                                  "url = \"ssl://[::1]:8883\"\nclient_id = \"other\"\n");
    const Config& c = config_of(l);
    CHECK(c.upstream.client_id == "other");
    CHECK(c.upstream.gateway_device_id == "gw-01");
}

TEST_CASE("the mqtt profile requires url") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\nprofile = \"mqtt\"\n"), 3);
    CHECK(contains(what, "upstream.url is required"));
}

TEST_CASE("the mqtt profile's url must be tcp:// or ssl:// with host:port") {
    TempDir dir;
    for (const char* bad : {"mqtt://127.0.0.1:1883", "tcp://127.0.0.1", "ssl://:8883", "tcp://h:1883/path"}) {
        CAPTURE(bad);
        const auto what = only_error_at(load_text(dir, "[[listener]]\nprotocol = \"mqtt\"\n[upstream]\n"
                                                       "profile = \"mqtt\"\nurl = \"" + std::string(bad) + "\"\n"),
                                        5);
        CHECK(contains(what, "upstream.url"));
    }
}

TEST_CASE("store bounds: max_bytes >= 1 MiB, max_messages >= 1, ttl_seconds >= 60") {
    TempDir dir;
    const std::string text = kMinimal + "[store]\nmax_bytes = 1048575\nmax_messages = 0\nttl_seconds = 59\n";
    const auto l = load_text(dir, text);
    REQUIRE(l.result.errors.size() == 3);
    CHECK(l.result.errors[0].line == 6);
    CHECK(contains(l.result.errors[0].what, "store.max_bytes"));
    CHECK(contains(l.result.errors[0].what, "at least 1048576"));
    CHECK(l.result.errors[1].line == 7);
    CHECK(contains(l.result.errors[1].what, "store.max_messages"));
    CHECK(l.result.errors[2].line == 8);
    CHECK(contains(l.result.errors[2].what, "store.ttl_seconds"));
}

TEST_CASE("c2d bounds: every value >= 1, queue_depth <= 10000, max_delivery_count <= 100, feedback_max_records <= 500") {
    TempDir dir;
    const std::string text = kMinimal + "[c2d]\nqueue_depth = 10001\nmax_delivery_count = 101\n"
                                        "default_ttl_seconds = 0\nlock_timeout_seconds = 0\n"
                                        "feedback_max_records = 501\nfeedback_max_delay_ms = 0\n";
    const auto l = load_text(dir, text);
    const std::vector<std::string> keys{"c2d.queue_depth", "c2d.max_delivery_count", "c2d.default_ttl_seconds",
                                        "c2d.lock_timeout_seconds", "c2d.feedback_max_records",
                                        "c2d.feedback_max_delay_ms"};
    REQUIRE(l.result.errors.size() == keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        CHECK(l.result.errors[i].line == static_cast<int>(6 + i));
        CHECK(contains(l.result.errors[i].what, keys[i]));
    }
    const auto ok = load_text(dir, kMinimal + "[c2d]\nqueue_depth = 10000\nmax_delivery_count = 100\nfeedback_max_records = 500\n");
    CHECK(config_of(ok).c2d.queue_depth == 10000);
}

TEST_CASE("metrics.bind must be host:port") {
    TempDir dir;
    const auto what = only_error_at(load_text(dir, kMinimal + "[metrics]\nbind = \"9464\"\n"), 6);
    CHECK(contains(what, "metrics.bind"));
}

TEST_CASE("gateway.id must be an IoT Hub device id") {
    TempDir dir;
    for (const std::string& bad : {std::string("gw 01"), std::string(""), std::string(129, 'a'), std::string("gw/1")}) {
        const auto what = only_error_at(load_text(dir, "[gateway]\nid = \"" + bad + "\"\n" + kMinimal), 2);
        CHECK(contains(what, "gateway.id"));
    }
    const auto l = load_text(dir, "[gateway]\nid = \"" + std::string(128, 'a') + "\"\n" + kMinimal);
    CHECK(config_of(l).gateway.id.size() == 128);
}

TEST_CASE("device and module ids outside the IoT Hub charset are refused") {
    TempDir dir;
    SUBCASE("device id") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[device]]\nid = \"a b\"\nkey = \"" + kKey + "\"\n"), 6);
        CHECK(contains(what, "device.id"));
    }
    SUBCASE("device module id") {
        const auto what = only_error_at(
            load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\nkey = \"" + kKey + "\"\nmodule_id = \"m#1\"\n"), 8);
        CHECK(contains(what, "device.module_id"));
    }
    SUBCASE("listener module id") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coap\"\nmodule_id = \"\"\n"), 7);
        CHECK(contains(what, "listener.module_id"));
    }
    SUBCASE("every allowed special character is accepted") {
        const auto l = load_text(dir, kMinimal + "[[device]]\nid = \"a-.%_*?!(),:=@$'z\"\nkey = \"" + kKey + "\"\n");
        CHECK(config_of(l).devices.at(0).id == "a-.%_*?!(),:=@$'z");
    }
}

TEST_CASE("a device key must be base64 of at least 16 bytes") {
    TempDir dir;
    SUBCASE("not base64") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\nkey = \"not-base64!\"\n"), 7);
        CHECK(contains(what, "device.key"));
        CHECK(contains(what, "base64"));
    }
    SUBCASE("15 bytes") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\nkey = \"AAECAwQFBgcICQoLDA0O\"\n"), 7);
        CHECK(contains(what, "device.key"));
        CHECK(contains(what, "15 bytes"));
    }
    SUBCASE("16 bytes is enough") {
        const auto l = load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\nkey = \"AAECAwQFBgcICQoLDA0ODw==\"\n");
        CHECK(config_of(l).devices.size() == 1);
    }
    SUBCASE("missing") {
        const auto what = only_error_at(load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\n"), 5);
        CHECK(contains(what, "device.key is required"));
    }
}

TEST_CASE("a duplicate device id is refused, naming the first one's line") {
    TempDir dir;
    const std::string text = kMinimal + "[[device]]\nid = \"d1\"\nkey = \"" + kKey + "\"\n" +
                             "[[device]]\nid = \"d1\"\nkey = \"" + kKey + "\"\n";
    const auto what = only_error_at(load_text(dir, text), 9);
    CHECK(contains(what, "duplicate device id \"d1\""));
    CHECK(contains(what, "line 5"));
}

TEST_CASE("relative data_dir resolves against the config file's directory, relative paths against data_dir") {
    TempDir dir;
    const auto l = load_text(dir, "[gateway]\ndata_dir = \"data\"\n"
                                  "[[listener]]\nprotocol = \"mqtts\"\ntls_cert = \"tls/c.pem\"\ntls_key = \"/etc/k.pem\"\n"
                                  "[upstream]\nconnection_string = \"" + kConnectionString + "\"\nca_file = \"ca.pem\"\n"
                                  "[store]\npath = \"db/hub.db\"\n");
    const Config& c = config_of(l);
    const std::string base = std::filesystem::path(dir.path()).lexically_normal().string();
    CHECK(c.gateway.data_dir == base + "/data");
    CHECK(c.store.path == base + "/data/db/hub.db");
    CHECK(c.listeners[0].tls_cert == base + "/data/tls/c.pem");
    CHECK(c.listeners[0].tls_key == "/etc/k.pem");
    CHECK(c.upstream.ca_file == base + "/data/ca.pem");
}

TEST_CASE("a TOML syntax error becomes one FILE:LINE: line") {
    TempDir dir;
    const auto l = load_text(dir, "[gateway]\nid = \"gw\"\nlog_level =\n");
    REQUIRE(l.result.errors.size() == 1);
    const std::string rendered = l.result.errors[0].to_string();
    CHECK(rendered.rfind(l.file + ":3: ", 0) == 0);
    CHECK(rendered.find('\n') == std::string::npos);
    CHECK(rendered.find("-->") == std::string::npos);
    CHECK(contains(rendered, "value"));
}

TEST_CASE("a table defined twice is reported at the second definition") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal + "[store]\npath = \"a\"\n[store]\npath = \"b\"\n");
    REQUIRE(l.result.errors.size() == 1);
    CHECK(l.result.errors[0].line == 7);
    CHECK(contains(l.result.errors[0].what, "store"));
    CHECK(l.result.errors[0].what.find('\n') == std::string::npos);
}

TEST_CASE("a missing file is FILE: cannot read: <strerror>") {
    TempDir dir;
    const std::string file = dir.file("absent.toml");
    const auto r = load_config(file);
    CHECK_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string() == file + ": cannot read: No such file or directory");
}

TEST_CASE("a directory is unreadable as a config file") {
    TempDir dir;
    const auto r = load_config(dir.path());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string() == dir.path() + ": cannot read: Is a directory");
}

TEST_CASE("several errors are all reported, in file order") {
    TempDir dir;
    const std::string text =
        "[gateway]\n"                  // 1
        "id = \"bad id\"\n"            // 2
        "[[listener]]\n"               // 3
        "protocol = \"mqtt\"\n"        // 4
        "auth = \"psk\"\n"             // 5
        "[upstream]\n"                 // 6
        "connection_string = \"" + kConnectionString + "\"\n"  // 7
        "max_batch_bytes = 1\n"        // 8
        "[store]\n"                    // 9
        "on_full = \"never\"\n"        // 10
        "colour = \"blue\"\n";         // 11
    const auto l = load_text(dir, text);
    CHECK_FALSE(l.result.config.has_value());
    REQUIRE(l.result.errors.size() == 5);
    const std::vector<int> lines{2, 5, 8, 10, 11};
    const std::vector<std::string> keys{"gateway.id", "listener.auth", "upstream.max_batch_bytes", "store.on_full",
                                        "\"colour\""};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        CHECK(l.result.errors[i].line == lines[i]);
        CHECK(contains(l.result.errors[i].what, keys[i]));
        CHECK(l.result.errors[i].to_string().rfind(l.file + ":" + std::to_string(lines[i]) + ": ", 0) == 0);
    }
}

TEST_CASE("ConfigError renders FILE:LINE: what, and FILE: what when the line is unknown") {
    CHECK(ConfigError{"a.toml", 7, "bad"}.to_string() == "a.toml:7: bad");
    CHECK(ConfigError{"a.toml", 0, "bad"}.to_string() == "a.toml: bad");
}

TEST_CASE("summary() is one line naming listeners, upstream, store and devices, without secrets") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal + "[[device]]\nid = \"d1\"\nkey = \"" + kKey + "\"\n");
    const std::string s = config_of(l).summary();
    CHECK(s.find('\n') == std::string::npos);
    CHECK(contains(s, "1 listener"));
    CHECK(contains(s, "mqtt 0.0.0.0:1883"));
    CHECK(contains(s, "azure-iot-hub hub.example.net as gw-up"));
    CHECK(contains(s, "/var/lib/hubgate/hubgate.db"));
    CHECK(contains(s, "1 static device"));
    CHECK(contains(s, "127.0.0.1:9464"));
    CHECK_FALSE(contains(s, kKey));
}

TEST_CASE("enum to_string gives the config spelling") {
    CHECK(std::string(to_string(Protocol::coaps)) == "coaps");
    CHECK(std::string(to_string(ListenerAuth::psk)) == "psk");
    CHECK(std::string(to_string(OnFull::reject_new)) == "reject-new");
    CHECK(std::string(to_string(Durability::process)) == "process");
}

// ---- translation rules and what they need (listener names, unmatched, password auth, children) --

TEST_CASE("rules load in file order with their properties in the order written") {
    TempDir dir;
    const std::string text = "[[listener]]\nname = \"lan\"\nprotocol = \"mqtt\"\nauth = \"password\"\nunmatched = \"raw\"\n"
                             "[upstream]\nconnection_string = \"" + kConnectionString + "\"\n"
                             "[[rule]]\nname = \"tasmota\"\nlisteners = [\"lan\"]\ntopic = \"tele/{device}/SENSOR\"\n"
                             "device = \"{device}\"\nproperties = { zeta = \"z\", alpha = \"{gateway}\", mid = \"m\" }\n"
                             "[[rule]]\ntopic = \"stat/{device}/POWER\"\nformat = \"text\"\nfield = \"power\"\n"
                             "[[device]]\nid = \"bridge\"\nkey = \"" + std::string("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") +
                             "\"\nchildren = \"zb-*\"\n";
    const auto l = load_text(dir, text);
    const auto& c = config_of(l);
    REQUIRE(c.rules.size() == 2);
    CHECK(c.rules[0].name == "tasmota");
    CHECK(c.rules[0].listeners == std::vector<std::string>{"lan"});
    REQUIRE(c.rules[0].properties.size() == 3);
    CHECK(c.rules[0].properties[0].first == "zeta");
    CHECK(c.rules[0].properties[1] == std::make_pair(std::string("alpha"), std::string("{gateway}")));
    CHECK(c.rules[0].properties[2].first == "mid");
    CHECK(c.rules[1].name == "rule-2");
    CHECK(c.rules[1].format == "text");
    CHECK(c.listeners[0].name == "lan");
    CHECK(c.listeners[0].auth == ListenerAuth::password);
    CHECK(c.listeners[0].unmatched == Unmatched::raw);
    CHECK(c.devices[0].children == "zb-*");
}

TEST_CASE("a rule error is reported at its file line: an unknown capture, an unknown listener") {
    TempDir dir;
    const std::string base = kMinimal + "[[rule]]\ntopic = \"tele/{device}/SENSOR\"\n";
    SUBCASE("a template naming a capture the pattern lacks") {
        const auto what = only_error_at(load_text(dir, base + "device = \"{name}\"\n"), 7);
        CHECK(contains(what, "name"));
    }
    SUBCASE("a listener no [[listener]] is named") {
        const auto l = load_text(dir, base + "listeners = [\"lan\"]\n");
        REQUIRE_FALSE(l.result.errors.empty());
        CHECK(contains(l.result.errors[0].what, "lan"));
        CHECK(l.result.errors[0].line >= 5);
    }
}

TEST_CASE("listener names are unique, and unmatched takes refuse, drop or raw") {
    TempDir dir;
    SUBCASE("a duplicate name") {
        const auto what = only_error_at(
            load_text(dir, kMinimal + "[[listener]]\nname = \"a\"\nprotocol = \"coap\"\n[[listener]]\nname = \"a\"\n"
                                      "protocol = \"coap\"\nbind = \"0.0.0.0:5699\"\n"),
            9);
        CHECK(contains(what, "duplicate listener name"));
    }
    SUBCASE("an unknown unmatched mode") {
        const auto what = only_error_at(
            load_text(dir, kMinimal + "[[listener]]\nprotocol = \"coap\"\nunmatched = \"ignore\"\n"), 7);
        CHECK(contains(what, "allowed values: refuse, drop, raw"));
    }
}

TEST_CASE("a rule with a topic may not name a CoAP listener") {
    TempDir dir;
    const auto l = load_text(dir, kMinimal + "[[listener]]\nname = \"udp\"\nprotocol = \"coap\"\n"
                                             "[[rule]]\nlisteners = [\"udp\"]\ntopic = \"a/{device}\"\n");
    REQUIRE_FALSE(l.result.errors.empty());
    CHECK(contains(l.result.errors[0].what, "use path for CoAP"));
}
