#include "config/config.hpp"

namespace hubgate::config {
namespace {

const char* profile_name(UpstreamProfile p) noexcept {
    return p == UpstreamProfile::azure_iot_hub ? "azure-iot-hub" : "mqtt";
}

std::string plural(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

const char* to_string(Protocol p) noexcept {
    switch (p) {
        case Protocol::mqtt: return "mqtt";
        case Protocol::mqtts: return "mqtts";
        case Protocol::coap: return "coap";
        case Protocol::coaps: return "coaps";
    }
    return "?";
}

const char* to_string(ListenerAuth a) noexcept {
    switch (a) {
        case ListenerAuth::sas: return "sas";
        case ListenerAuth::none: return "none";
        case ListenerAuth::psk: return "psk";
        case ListenerAuth::password: return "password";
    }
    return "?";
}

const char* to_string(Unmatched u) noexcept {
    switch (u) {
        case Unmatched::refuse: return "refuse";
        case Unmatched::drop: return "drop";
        case Unmatched::raw: return "raw";
    }
    return "?";
}

const char* to_string(OnFull f) noexcept {
    return f == OnFull::drop_oldest ? "drop-oldest" : "reject-new";
}

const char* to_string(Durability d) noexcept {
    return d == Durability::power ? "power" : "process";
}

std::string Endpoint::to_string() const {
    // Brackets keep "[::1]:1883" unambiguous, as URLs and ss(8) print it.
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::string ConfigError::to_string() const {
    if (line > 0) return file + ":" + std::to_string(line) + ": " + what;
    return file + ": " + what;
}

std::string Config::summary() const {
    // One line, no secrets: keys, passwords and SharedAccessKey never appear here.
    std::string s = "gateway " + gateway.id + ": " + plural(listeners.size(), "listener", "listeners") + " (";
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        const Listener& l = listeners[i];
        if (i) s += ", ";
        s += std::string(config::to_string(l.protocol)) + " " + l.bind.to_string() + " auth " +
             config::to_string(l.auth);
    }
    s += "), upstream " + std::string(profile_name(upstream.profile)) + " ";
    if (upstream.profile == UpstreamProfile::azure_iot_hub && upstream.connection_string)
        s += upstream.connection_string->host_name;
    else
        s += upstream.url;
    s += " as " + upstream.gateway_device_id;
    if (upstream.batch)
        s += " (batches <= " + std::to_string(upstream.max_batch_bytes) + " B, " +
             std::to_string(upstream.max_batch_delay_ms) + " ms)";
    else
        s += " (unbatched)";
    s += ", store " + store.path + " (<= " + std::to_string(store.max_bytes) + " B, " +
         std::to_string(store.max_messages) + " messages, ttl " + std::to_string(store.ttl_seconds) + " s, " +
         config::to_string(store.on_full) + ", durability " + config::to_string(store.durability) + ")";
    s += ", c2d queue " + std::to_string(c2d.queue_depth) + " per device";
    s += ", " + plural(devices.size(), "static device", "static devices");
    if (!rules.empty()) s += ", " + plural(rules.size(), "rule", "rules");
    s += ", metrics " + metrics.bind.to_string();
    s += ", log " + gateway.log_level;
    return s;
}

}  // namespace hubgate::config
