// `hubgate pair open|close|status`, `devices pending|approve|key`: pairing over the LAN
// (docs/pairing.md). All but `devices key` act on the running gateway through its control socket;
// with no gateway running they exit 3 and say so.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/model/sas_token.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/pairing/control_client.hpp"

namespace hubgate::app {
namespace {

std::optional<config::Config> load(const std::string& config_path) {
    auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(loaded.config);
}

// Sends one request; prints the answer. The exit code: 0, 1 (refused), 2 (config), 3 (no gateway).
int ask(const std::string& config_path, const std::string& request, std::string* body = nullptr) {
    const auto cfg = load(config_path);
    if (!cfg) return kExitBadConfig;
    const std::string path = pairing::control_socket_path(*cfg);
    auto reply = pairing::control_request(path, request);
    if (!reply) {
        std::cerr << "hubgate is not running (no answer on its control socket: " << reply.error() << ")\n";
        return kExitNotRunning;
    }
    if (!reply->ok) {
        std::cerr << reply->text;
        return kExitFailure;
    }
    if (body)
        *body = std::move(reply->text);
    else
        std::cout << reply->text;
    return kExitOk;
}

std::string iso_utc(std::int64_t unix_ms) {
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

int cmd_pair_open(const std::string& config_path, long seconds) {
    if (seconds != 0 && (seconds < 1 || seconds > 86400)) {
        std::cerr << "--for must be 1-86400 seconds\n";
        return kExitFailure;
    }
    return ask(config_path, seconds == 0 ? "pair open" : "pair open " + std::to_string(seconds));
}

int cmd_pair_close(const std::string& config_path) { return ask(config_path, "pair close"); }

int cmd_pair_status(const std::string& config_path) { return ask(config_path, "pair status"); }

int cmd_devices_pending(const std::string& config_path) {
    std::string body;
    const int code = ask(config_path, "devices pending", &body);
    if (code != kExitOk) return code;
    std::vector<std::vector<std::string>> rows{{"ID", "ENROLLMENT", "ADDRESS", "FIRST", "LAST", "COUNT"}};
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::istringstream fields(line);
        std::string item;
        while (std::getline(fields, item, '\t')) f.push_back(item);
        if (f.size() != 6) continue;
        rows.push_back({f[0], f[1], f[2], iso_utc(std::stoll(f[3])), iso_utc(std::stoll(f[4])), f[5]});
    }
    std::vector<std::size_t> width(6, 0);
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size(); ++i) {
            std::cout << r[i];
            if (i + 1 < r.size()) std::cout << std::string(width[i] - r[i].size() + 2, ' ');
        }
        std::cout << '\n';
    }
    return kExitOk;
}

int cmd_devices_approve(const std::string& config_path, const std::string& id) {
    if (!is_hub_id(id)) {
        std::cerr << "device id '" << id << "' is not valid: " << kHubIdRule << '\n';
        return kExitFailure;
    }
    return ask(config_path, "devices approve " + id);
}

int cmd_devices_key(const std::string& config_path, const std::string& id, const std::string& enrollment) {
    const auto cfg = load(config_path);
    if (!cfg) return kExitBadConfig;
    if (!is_hub_id(id)) {
        std::cerr << "device id '" << id << "' is not valid: " << kHubIdRule << '\n';
        return kExitFailure;
    }
    const auto it = std::find_if(cfg->enrollments.begin(), cfg->enrollments.end(),
                                 [&](const config::Enrollment& e) { return e.id == enrollment; });
    if (it == cfg->enrollments.end()) {
        std::cerr << "no [[enrollment]] with id \"" << enrollment << "\" in " << cfg->file << '\n';
        return kExitFailure;
    }
    auto key = derive_device_key(it->key, id);
    if (!key) {
        std::cerr << key.error() << '\n';
        return kExitFailure;
    }
    std::cout << *key << '\n';
    return kExitOk;
}

}  // namespace hubgate::app
