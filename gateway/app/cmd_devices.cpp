// `hubgate devices add|list|remove`: the device registry in the store's database (DESIGN.md
// contracts). A running gateway reads it at start and on SIGHUP (`systemctl reload hubgate`).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/app/commands.hpp"
#include "gateway/app/qr_terminal.hpp"
#include "gateway/model/connection_string.hpp"
#include "gateway/model/crypto.hpp"
#include "gateway/model/validation.hpp"
#include "store/device_registry.hpp"

namespace hubgate::app {
namespace {

constexpr const char* kReloadHint =
    "a running gateway picks this up on reload: systemctl reload hubgate (or kill -HUP its pid)";

std::optional<config::Config> load(const std::string& config_path) {
    auto loaded = config::load_config(config_path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(loaded.config);
}

const config::Device* configured(const config::Config& cfg, const std::string& id) {
    const auto it = std::find_if(cfg.devices.begin(), cfg.devices.end(), [&](const auto& d) { return d.id == id; });
    return it == cfg.devices.end() ? nullptr : &*it;
}

// Run as root (the usual way to call the CLI), SQLite creates the database and its -wal/-shm files
// owned by root, and the gateway's own user could then not write them. Hand root's files to the
// owner of the data directory (the gateway's user, with the shipped tmpfiles.d entry).
void match_directory_owner(const std::string& db_path) {
    if (geteuid() != 0) return;
    const auto dir = std::filesystem::path(db_path).parent_path();
    struct stat d {};
    if (::stat(dir.c_str(), &d) != 0) return;
    for (const std::string suffix : {"", "-wal", "-shm"}) {
        const std::string f = db_path + suffix;
        struct stat st {};
        if (d.st_uid != 0 && ::stat(f.c_str(), &st) == 0 && st.st_uid == 0 &&
            ::chown(f.c_str(), d.st_uid, d.st_gid) != 0)
            std::cerr << "warning: cannot give " << f << " to the owner of " << dir << '\n';
    }
}

std::unique_ptr<store::DeviceRegistry> open_registry(const config::Config& cfg, bool create) {
    if (create) {
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(cfg.store.path).parent_path(), ec);
    }
    auto reg = store::DeviceRegistry::open(cfg.store.path, create);
    if (!reg) {
        std::cerr << reg.error() << '\n';
        return nullptr;
    }
    return std::move(reg.value());
}

}  // namespace

int cmd_devices_add(const std::string& config_path, const std::string& id, const std::string& module_id,
                    const std::string& host, const std::string& children, bool qr) {
    const auto cfg = load(config_path);
    if (!cfg) return kExitBadConfig;
    if (!is_hub_id(id)) {
        std::cerr << "device id '" << id << "' is not valid: " << kHubIdRule << '\n';
        return kExitFailure;
    }
    if (!module_id.empty() && !is_hub_id(module_id)) {
        std::cerr << "module id '" << module_id << "' is not valid: " << kHubIdRule << '\n';
        return kExitFailure;
    }
    const bool printable = std::all_of(children.begin(), children.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (children.size() > 256 || !printable) {
        std::cerr << "--children '" << children << "' must be a glob of 1-256 printable ASCII chars without spaces\n";
        return kExitFailure;
    }
    if (const auto* d = configured(*cfg, id)) {
        std::cerr << "device " << id << " is defined in " << cfg->file << ':' << d->line
                  << "; its key is there\n";
        return kExitFailure;
    }
    auto key = random_device_key();
    if (!key) {
        std::cerr << key.error() << '\n';
        return kExitFailure;
    }
    int code = kExitOk;
    {
        auto reg = open_registry(*cfg, true);
        if (!reg) return kExitFailure;
        auto added = reg->add({id, *key, module_id, 0, children, {}});
        if (!added) {
            std::cerr << added.error() << '\n';
            code = kExitFailure;
        } else if (!*added) {
            std::cerr << "device " << id << " is registered already; `hubgate devices remove " << id
                      << "` first to give it a new key\n";
            code = kExitFailure;
        }
    }
    match_directory_owner(cfg->store.path);
    if (code != kExitOk) return code;
    const std::string connection_string = ConnectionString{host, id, *key, {}}.to_string();
    std::cout << connection_string << '\n';
    if (qr) {
        // For phone-based setup: the same connection string, scannable from the terminal.
        auto drawn = qr_terminal(connection_string);
        if (drawn)
            std::cout << *drawn;
        else
            std::cerr << "warning: " << drawn.error() << '\n';
    }
    std::cerr << "added device " << id << "; " << kReloadHint << '\n';
    return kExitOk;
}

int cmd_devices_list(const std::string& config_path) {
    const auto cfg = load(config_path);
    if (!cfg) return kExitBadConfig;
    struct Row {
        std::string id, source, module_id, enrollment;
    };
    std::vector<Row> rows;
    for (const auto& d : cfg->devices) rows.push_back({d.id, "config", d.module_id, {}});
    std::error_code ec;
    if (std::filesystem::exists(cfg->store.path, ec)) {
        auto reg = open_registry(*cfg, false);
        if (!reg) return kExitFailure;
        auto registered = reg->registered();
        auto seen = reg->seen();
        if (!registered || !seen) {
            std::cerr << (registered ? seen.error() : registered.error()) << '\n';
            return kExitFailure;
        }
        auto listed = [&rows](const std::string& id) {
            return std::any_of(rows.begin(), rows.end(), [&](const Row& r) { return r.id == id; });
        };
        for (auto& d : *registered)
            if (!listed(d.id))
                rows.push_back({std::move(d.id), "registry", std::move(d.module_id), std::move(d.enrollment)});
        for (auto& id : *seen)
            if (!listed(id)) rows.push_back({std::move(id), "seen", {}, {}});
    }
    std::size_t width = 2, module_width = 6;
    for (const auto& r : rows) {
        width = std::max(width, r.id.size());
        module_width = std::max(module_width, std::max<std::size_t>(r.module_id.size(), 1));
    }
    // ENROLLMENT: the enrollment group a paired device joined through (docs/pairing.md).
    auto print = [&](const std::string& id, const std::string& source, const std::string& module_id,
                     const std::string& enrollment) {
        const std::string module = module_id.empty() ? "-" : module_id;
        std::cout << id << std::string(width - id.size() + 2, ' ') << source << std::string(10 - source.size(), ' ')
                  << module << std::string(module_width - module.size() + 2, ' ')
                  << (enrollment.empty() ? "-" : enrollment) << '\n';
    };
    print("ID", "SOURCE", "MODULE", "ENROLLMENT");
    for (const auto& r : rows) print(r.id, r.source, r.module_id, r.enrollment);
    return kExitOk;
}

int cmd_devices_remove(const std::string& config_path, const std::string& id) {
    const auto cfg = load(config_path);
    if (!cfg) return kExitBadConfig;
    if (const auto* d = configured(*cfg, id)) {
        std::cerr << "device " << id << " is defined in " << cfg->file << ':' << d->line << "; remove it there\n";
        return kExitFailure;
    }
    std::error_code ec;
    if (!std::filesystem::exists(cfg->store.path, ec)) {
        std::cerr << "no device " << id << " (no store at " << cfg->store.path << ")\n";
        return kExitFailure;
    }
    int code = kExitOk;
    {
        auto reg = open_registry(*cfg, false);
        if (!reg) return kExitFailure;
        auto removed = reg->remove(id);
        if (!removed) {
            std::cerr << removed.error() << '\n';
            code = kExitFailure;
        } else if (!*removed) {
            std::cerr << "no device " << id << " in the registry or among the seen devices\n";
            code = kExitFailure;
        }
    }
    match_directory_owner(cfg->store.path);
    if (code != kExitOk) return code;
    std::cerr << "removed device " << id << "; " << kReloadHint << '\n';
    return kExitOk;
}

}  // namespace hubgate::app
