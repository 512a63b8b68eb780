// hubgate's configuration as typed values, after load_config() has checked every key.
// Included widely: keep it free of toml11 (only config_loader.cpp sees TOML).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/model/connection_string.hpp"
#include "gateway/translate/rule_spec.hpp"

namespace hubgate::config {

enum class Protocol { mqtt, mqtts, coap, coaps };
enum class ListenerAuth { sas, none, psk, password };
// What a listener does with a topic or path that neither the IoT Hub dialect nor a rule matches.
enum class Unmatched { refuse, drop, raw };
enum class UpstreamProfile { azure_iot_hub, mqtt };
enum class OnFull { drop_oldest, reject_new };
enum class Durability { power, process };

struct Endpoint {
    std::string host;  // literal address or name, e.g. "0.0.0.0", "::1", "localhost"
    std::uint16_t port = 0;
    std::string to_string() const;  // "host:port" ("[v6]:port" for IPv6 literals)
};

struct Listener {
    std::string name;  // optional; rules name listeners by it (unique)
    Protocol protocol = Protocol::mqtt;
    Endpoint bind;
    ListenerAuth auth = ListenerAuth::sas;
    std::string module_id;
    std::string tls_cert;  // mqtts; absolute after load (resolved against data_dir)
    std::string tls_key;
    // A connection that sends no CONNECT (mqtt) within this time is closed, so idle or half-open
    // sockets cannot pile up.
    std::uint32_t connect_timeout_seconds = 10;
    // Default (unset): drop on MQTT listeners that some rule names, refuse elsewhere (DESIGN.md).
    std::optional<Unmatched> unmatched;
    int line = 0;          // where the [[listener]] table starts, for messages
};

struct Gateway {
    std::string id = "gw-01";
    std::string data_dir = "/var/lib/hubgate";
    std::string log_level = "info";  // trace|debug|info|warn|error
    // Ids that named themselves on auth = "none" listeners the gateway keeps (in memory and in the
    // store); a new id beyond this is refused. Bounds what an open LAN listener can make it hold.
    std::uint32_t max_seen_devices = 10000;
};

struct Upstream {
    UpstreamProfile profile = UpstreamProfile::azure_iot_hub;
    std::optional<ConnectionString> connection_string;  // azure-iot-hub
    std::string url;        // mqtt profile: tcp://host:port or ssl://host:port (the first of `urls`)
    // mqtt profile: every node of the upstream, in the order tried (`url` is a string or a list).
    // The client stays on a node that answers and fails over round the list (docs/upstream.md).
    std::vector<std::string> urls;
    // mqtt profile: write `.` as %2E in the topics the gateway publishes (RabbitMQ's MQTT plugin
    // turns every `.` of a topic into `/` on delivery).
    bool percent_encode_dots = false;
    std::string client_id;  // mqtt profile: defaults to gateway.id
    std::string username;
    std::string password;
    std::string ca_file;    // optional; system trust store otherwise
    bool batch = true;
    std::uint32_t max_batch_bytes = 262144;
    std::uint32_t max_batch_delay_ms = 50;
    // While the hub is unreachable (TCP refused or timed out), retry every few hundred ms for this
    // long into the outage before backing off; a hub that refuses (CONNACK error, TLS/auth) backs off
    // at once. docs/upstream.md has the schedule.
    std::uint32_t fast_retry_seconds = 30;
    std::uint32_t backoff_max_ms = 10000;  // the backoff's cap (IoT Hub device SDKs use 10 s)

    // `{gw}` in upstream topics: connection string DeviceId or gateway.id (mqtt profile).
    std::string gateway_device_id;
};

struct Store {
    std::string path = "hubgate.db";  // absolute after load (resolved against data_dir)
    std::uint64_t max_bytes = 1073741824;
    std::uint64_t max_messages = 10000000;
    std::uint64_t ttl_seconds = 604800;
    OnFull on_full = OnFull::drop_oldest;
    Durability durability = Durability::power;
    // At most one outbox commit per this many ms: messages arriving meanwhile wait and share one
    // transaction and one fsync (SD-card wear); a group of 12 KiB commits at once, and a message
    // after a quiet spell at once. Bounds the ack latency it adds. 0 = commit at once. docs/store.md.
    std::uint32_t commit_window_ms = 100;
};

struct C2d {
    std::uint32_t queue_depth = 50;
    std::uint32_t max_delivery_count = 10;
    std::uint64_t default_ttl_seconds = 3600;
    std::uint32_t lock_timeout_seconds = 60;
    std::uint32_t feedback_max_records = 64;
    std::uint32_t feedback_max_delay_ms = 15000;
};

struct Metrics {
    Endpoint bind{"127.0.0.1", 9464};
};

// [discovery]: the listeners advertised with DNS-SD through avahi-daemon (docs/discovery.md).
struct Discovery {
    bool mdns = true;
    // The DNS-SD instance name; `{gateway}` is replaced by gateway.id. Capped at 63 bytes when built.
    std::string instance = "hubgate {gateway}";
};

struct Device {
    std::string id;
    std::string key;  // base64
    std::string module_id;
    // A bridge (Zigbee2MQTT, a LoRa forwarder) may speak for the device ids this shell-style glob
    // matches (`*` and `?`; `*` crosses `/`; case-sensitive). Empty: only for itself.
    std::string children;
    int line = 0;
};

// Pairing over the LAN (docs/pairing.md): how long `hubgate pair open` opens the window by default.
struct Pairing {
    std::uint32_t window_seconds = 600;
};

// An enrollment group (IoT Hub DPS symmetric-key group): a device whose key is
// base64(HMAC-SHA256(base64decode(key), device id)) joins on first contact, while the pairing
// window is open (`window`) or at any time (`always`).
enum class EnrollmentRegister { window, always };
struct Enrollment {
    std::string id;
    std::string key;  // base64 group key (checked: decodes to at least 16 bytes)
    std::string module_id;
    EnrollmentRegister register_mode = EnrollmentRegister::window;
    int line = 0;
};

struct Config {
    std::string file;  // the path it was loaded from
    Gateway gateway;
    std::vector<Listener> listeners;
    Upstream upstream;
    Store store;
    C2d c2d;
    Metrics metrics;
    Discovery discovery;
    std::vector<Device> devices;
    Pairing pairing;
    std::vector<Enrollment> enrollments;
    std::vector<translate::RuleSpec> rules;  // [[rule]] tables in file order, checked by compile()

    // One line for logs and check-config: "2 listeners, 3 devices, upstream mqtt tcp://..., store ..."
    std::string summary() const;
};

// A refusal pointing at the file: rendered "FILE:LINE: what" (LINE omitted when unknown, i.e. 0).
struct ConfigError {
    std::string file;
    int line = 0;
    std::string what;
    std::string to_string() const;
};

struct LoadResult {
    std::optional<Config> config;
    std::vector<ConfigError> errors;  // all problems found, in file order; empty iff config is set
};

// Reads, parses and validates. Never throws.
LoadResult load_config(const std::string& path);

const char* to_string(Protocol) noexcept;
const char* to_string(ListenerAuth) noexcept;
const char* to_string(OnFull) noexcept;
const char* to_string(Durability) noexcept;
const char* to_string(Unmatched) noexcept;

}  // namespace hubgate::config
