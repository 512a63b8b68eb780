#include "store/device_registry.hpp"

#include <chrono>
#include <filesystem>

#include "store/schema.hpp"
#include "store/sqlite_util.hpp"

namespace hubgate::store {

using detail::StmtPtr;

struct DeviceRegistry::Impl {
    std::string path;
    detail::DbPtr db;

    Status exec(const char* sql) {
        if (auto e = detail::exec(db.get(), sql)) return Error{"device registry " + path + ": " + e->reason};
        return std::nullopt;
    }
    Result<StmtPtr> prepare(std::string_view sql) {
        auto s = detail::prepare(db.get(), sql);
        if (!s) return Error{"device registry " + path + ": " + s.error()};
        return s;
    }
    Error step_error() const { return Error{"device registry " + path + ": " + detail::errmsg(db.get())}; }
};

DeviceRegistry::DeviceRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceRegistry::~DeviceRegistry() = default;

Result<std::unique_ptr<DeviceRegistry>> DeviceRegistry::open(const std::string& path, bool create) {
    std::error_code ec;
    if (!create && !std::filesystem::exists(path, ec)) return Error{"no store at " + path};
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    auto db = detail::open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0));
    if (!db) return Error{db.error()};
    impl->db = std::move(db).value();
    // The same steps Store::open applies: a registry opened first leaves a store the gateway accepts.
    if (auto v = schema::migrate(impl->db.get(), schema::steps(), path); !v) return Error{v.error()};
    if (auto e = detail::enable_wal(impl->db.get(), path)) return *e;
    // A device added is a device that can connect after a power cut.
    if (auto e = impl->exec("PRAGMA synchronous = FULL")) return *e;
    return std::unique_ptr<DeviceRegistry>(new DeviceRegistry(std::move(impl)));
}

Result<bool> DeviceRegistry::add(const RegisteredDevice& device) {
    auto s = impl_->prepare(
        "INSERT INTO registered_devices (id, key, module_id, added_ms, children, enrollment) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING");
    if (!s) return Error{s.error()};
    const auto added_ms = device.added_ms != 0
                              ? device.added_ms
                              : std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    detail::bind_text(s->get(), 1, device.id);
    detail::bind_text(s->get(), 2, device.key);
    detail::bind_text(s->get(), 3, device.module_id);
    detail::bind_text(s->get(), 5, device.children);
    detail::bind_text(s->get(), 6, device.enrollment);
    sqlite3_bind_int64(s->get(), 4, added_ms);
    if (sqlite3_step(s->get()) != SQLITE_DONE) return impl_->step_error();
    return sqlite3_changes(impl_->db.get()) == 1;
}

Result<bool> DeviceRegistry::remove(std::string_view id) {
    if (auto e = impl_->exec("BEGIN IMMEDIATE")) return *e;
    int removed = 0;
    for (const char* sql : {"DELETE FROM registered_devices WHERE id = ?", "DELETE FROM known_devices WHERE id = ?",
                            "DELETE FROM device_routes WHERE id = ?", "DELETE FROM device_twins WHERE id = ?"}) {
        auto s = impl_->prepare(sql);
        if (!s) {
            impl_->exec("ROLLBACK");
            return Error{s.error()};
        }
        detail::bind_text(s->get(), 1, id);
        if (sqlite3_step(s->get()) != SQLITE_DONE) {
            auto err = impl_->step_error();
            impl_->exec("ROLLBACK");
            return err;
        }
        removed += sqlite3_changes(impl_->db.get());
    }
    if (auto e = impl_->exec("COMMIT")) {
        impl_->exec("ROLLBACK");
        return *e;
    }
    return removed > 0;
}

Result<std::vector<RegisteredDevice>> DeviceRegistry::registered() {
    auto s = impl_->prepare("SELECT id, key, module_id, added_ms, children, enrollment FROM registered_devices ORDER BY id");
    if (!s) return Error{s.error()};
    std::vector<RegisteredDevice> out;
    int rc;
    while ((rc = sqlite3_step(s->get())) == SQLITE_ROW)
        out.push_back({std::string(detail::column_bytes(s->get(), 0)), std::string(detail::column_bytes(s->get(), 1)),
                       std::string(detail::column_bytes(s->get(), 2)), sqlite3_column_int64(s->get(), 3),
                       std::string(detail::column_bytes(s->get(), 4)),
                       std::string(detail::column_bytes(s->get(), 5))});
    if (rc != SQLITE_DONE) return impl_->step_error();
    return out;
}

Result<std::vector<std::string>> DeviceRegistry::seen() {
    auto s = impl_->prepare("SELECT id FROM known_devices ORDER BY id");
    if (!s) return Error{s.error()};
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(s->get())) == SQLITE_ROW) out.emplace_back(detail::column_bytes(s->get(), 0));
    if (rc != SQLITE_DONE) return impl_->step_error();
    return out;
}

Result<std::vector<StoredRoute>> DeviceRegistry::routes() {
    auto s = impl_->prepare("SELECT id, rule, captures, via FROM device_routes ORDER BY id");
    if (!s) return Error{s.error()};
    std::vector<StoredRoute> out;
    int rc;
    while ((rc = sqlite3_step(s->get())) == SQLITE_ROW)
        out.push_back({std::string(detail::column_bytes(s->get(), 0)), std::string(detail::column_bytes(s->get(), 1)),
                       std::string(detail::column_bytes(s->get(), 2)), std::string(detail::column_bytes(s->get(), 3))});
    if (rc != SQLITE_DONE) return impl_->step_error();
    return out;
}

}  // namespace hubgate::store
