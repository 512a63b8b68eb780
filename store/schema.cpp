#include "store/schema.hpp"

#include <array>
#include <string>

#include "store/sqlite_util.hpp"

namespace hubgate::store::schema {
namespace {

// v1: the D2C outbox, one row per message, and a one-row meta table that every write transaction
// updates so that open() learns count, bytes and the last seq without scanning the outbox.
// seq is assigned by the writer from meta.last_seq, so it never goes back even after the outbox was
// emptied (a plain rowid would restart at 1 and confuse a reader's "after seq" position).
constexpr std::string_view kV1 = R"sql(
CREATE TABLE outbox (
  seq         INTEGER PRIMARY KEY,
  enqueued_ms INTEGER NOT NULL,
  device_id   TEXT    NOT NULL,
  module_id   TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  props       BLOB    NOT NULL,
  body        BLOB    NOT NULL
);
CREATE TABLE meta (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  messages  INTEGER NOT NULL,
  bytes     INTEGER NOT NULL,
  last_seq  INTEGER NOT NULL
);
INSERT INTO meta (id, messages, bytes, last_seq) VALUES (1, 0, 0, 0);
)sql";

// v2: the C2D inbox and the devices first seen on an auth = "none" listener. Inbox seq comes from
// meta.inbox_last_seq (same reason as the outbox: a rowid would be reused once the inbox empties, and
// a delivery position "after seq N" would then skip or repeat). message_id is the dedup key of a
// message the hub resent; (device_id, seq) serves "the device's oldest after N"; expires_ms serves
// the expiry scan without reading every row.
constexpr std::string_view kV2 = R"sql(
ALTER TABLE meta ADD COLUMN inbox_last_seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE c2d_inbox (
  seq            INTEGER PRIMARY KEY,
  device_id      TEXT    NOT NULL,
  message_id     TEXT    NOT NULL,
  enqueued_ms    INTEGER NOT NULL,
  expires_ms     INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  ack            INTEGER NOT NULL,
  props          BLOB    NOT NULL,
  body           BLOB    NOT NULL,
  UNIQUE (device_id, message_id)
);
CREATE INDEX c2d_inbox_device_seq ON c2d_inbox (device_id, seq);
CREATE INDEX c2d_inbox_expires ON c2d_inbox (expires_ms);
CREATE TABLE known_devices (
  id            TEXT    PRIMARY KEY,
  first_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// v3: devices added with `hubgate devices add` (the registry): id, base64 SAS key, module. Written by
// the CLI in its own process, read by the gateway at start and on SIGHUP.
constexpr std::string_view kV3 = R"sql(
CREATE TABLE registered_devices (
  id        TEXT    PRIMARY KEY,
  key       TEXT    NOT NULL,
  module_id TEXT    NOT NULL,
  added_ms  INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// v4: the route of each device's last message accepted through a translation rule (rule name, its
// captures URL-encoded as `k=v&...`, the bridge that carried it), so C2D reaches a commodity device
// on its own command topic after a restart; and a registered bridge's `children` glob.
constexpr std::string_view kV4 = R"sql(
ALTER TABLE registered_devices ADD COLUMN children TEXT NOT NULL DEFAULT '';
CREATE TABLE device_routes (
  id         TEXT    PRIMARY KEY,
  rule       TEXT    NOT NULL,
  captures   TEXT    NOT NULL,
  via        TEXT    NOT NULL,
  updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// v5: the enrollment group a registered device joined through (pairing; empty for `devices add`).
constexpr std::string_view kV5 = R"sql(
ALTER TABLE registered_devices ADD COLUMN enrollment TEXT NOT NULL DEFAULT '';
)sql";

// v6: device twins (docs/twins.md): per device the desired and reported JSON documents (without
// `$version`) and their versions, each rising by one per change, as IoT Hub's are.
constexpr std::string_view kV6 = R"sql(
CREATE TABLE device_twins (
  id               TEXT    PRIMARY KEY,
  desired          TEXT    NOT NULL DEFAULT '{}',
  desired_version  INTEGER NOT NULL DEFAULT 1,
  reported         TEXT    NOT NULL DEFAULT '{}',
  reported_version INTEGER NOT NULL DEFAULT 1,
  updated_ms       INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// v7: reported properties on their way upstream (docs/twins.md, the gateway's own twin): the
// reported document the hub last acknowledged for the device and its version. A device whose
// reported_version is above reported_sent_version has a change the hub has not confirmed; the patch
// sent is the difference between the two documents (so `null` for removed properties survives any
// number of changes in between, a restart or an outage).
constexpr std::string_view kV7 = R"sql(
ALTER TABLE device_twins ADD COLUMN reported_sent TEXT NOT NULL DEFAULT '{}';
ALTER TABLE device_twins ADD COLUMN reported_sent_version INTEGER NOT NULL DEFAULT 0;
)sql";

// v8: the outbox as a ring of 16 tables (`outbox`, then `outbox_1` ... `outbox_15`, store/outbox_ring.hpp)
// and the acknowledged-up-to marker: the hub's acknowledgements move the marker instead of deleting
// rows one by one (which rewrote row pages), and a table whose rows are all acknowledged is emptied at
// once (docs/store.md, SD-card wear). The 15 new tables have v1's outbox columns.
const std::string& v8() {
    static const std::string sql = [] {
        std::string s = "ALTER TABLE meta ADD COLUMN acked_seq INTEGER NOT NULL DEFAULT 0;\n";
        for (int k = 1; k < 16; ++k)
            s += "CREATE TABLE outbox_" + std::to_string(k) +
                 " (seq INTEGER PRIMARY KEY, enqueued_ms INTEGER NOT NULL, device_id TEXT NOT NULL, "
                 "module_id TEXT NOT NULL, size INTEGER NOT NULL, props BLOB NOT NULL, body BLOB NOT NULL);\n";
        return s;
    }();
    return sql;
}


}  // namespace

std::span<const std::string_view> steps() noexcept {
    static const std::array<std::string_view, 8> kSteps{kV1, kV2, kV3, kV4, kV5, kV6, kV7, v8()};
    return kSteps;
}

Result<int> migrate(sqlite3* db, std::span<const std::string_view> migration_steps, const std::string& path) {
    const int target = static_cast<int>(migration_steps.size());
    auto version = detail::query_int(db, "PRAGMA user_version");
    if (!version) return Error{"cannot read schema version of " + path + ": " + version.error()};
    const int found = static_cast<int>(*version);
    if (found > target)
        return Error{"store " + path + " has schema version " + std::to_string(found) +
                     ", newer than this hubgate understands (" + std::to_string(target) +
                     "); run a newer hubgate or point [store] path elsewhere"};
    if (found == target) return found;

    // Takes effect only before the first table exists (later it would need a full VACUUM); on a
    // file another process has just given tables it changes nothing.
    if (found == 0) {
        // 1 KiB pages (SQLite's default is 4 KiB): every commit writes each page it touches whole
        // into the WAL (the outbox's last leaf, the table root, meta, page 1, the pointer map), so
        // smaller pages cut what a small commit writes several times over (docs/BENCHMARKS.md,
        // wear). Like auto_vacuum it must come first, before any table exists; a store created
        // earlier keeps its page size.
        if (auto e = detail::exec(db, "PRAGMA page_size = 1024"))
            return Error{"cannot set page_size on " + path + ": " + e->reason};
        if (auto e = detail::exec(db, "PRAGMA auto_vacuum = INCREMENTAL"))
            return Error{"cannot set auto_vacuum on " + path + ": " + e->reason};
    }

    if (auto e = detail::exec(db, "BEGIN IMMEDIATE"))
        return Error{"cannot migrate " + path + ": " + e->reason};
    // Another process (`hubgate devices add`, or a gateway) may have migrated the file between the
    // read above and taking the write lock: decide from what is there now.
    auto refuse = [db](std::string why) {
        detail::exec(db, "ROLLBACK");
        return Error{std::move(why)};
    };
    auto locked = detail::query_int(db, "PRAGMA user_version");
    if (!locked) return refuse("cannot read schema version of " + path + ": " + locked.error());
    if (*locked > target || *locked < found)
        return refuse("schema version of " + path + " changed while migrating it; open it again");
    if (*locked == 0) {
        auto tables = detail::query_int(db, "SELECT count(*) FROM sqlite_schema");
        if (!tables) return refuse("cannot read " + path + ": " + tables.error());
        if (*tables != 0)
            return refuse("file " + path + " holds tables but no hubgate schema version; not a hubgate store");
    }
    for (int v = static_cast<int>(*locked); v < target; ++v) {
        const std::string sql(migration_steps[static_cast<std::size_t>(v)]);
        if (auto e = detail::exec(db, sql.c_str())) {
            detail::exec(db, "ROLLBACK");
            return Error{"migration of " + path + " to schema version " + std::to_string(v + 1) +
                         " failed: " + e->reason};
        }
    }
    const std::string set_version = "PRAGMA user_version = " + std::to_string(target);
    if (auto e = detail::exec(db, set_version.c_str()); e || detail::exec(db, "COMMIT")) {
        detail::exec(db, "ROLLBACK");
        return Error{"cannot commit migration of " + path + ": " + detail::errmsg(db)};
    }
    return found;
}

}  // namespace hubgate::store::schema
