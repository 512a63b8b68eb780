// The C2D inbox and the known devices: each Store::inbox_* call becomes one InboxWork that the
// writer thread runs inside its commit group (store.cpp), so inbox changes share the outbox's
// transactions and their callbacks run after COMMIT.
#include "store/inbox.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/inbox_work.hpp"
#include "store/record_codec.hpp"
#include "store/store.hpp"

namespace hubgate::store {

namespace detail {

Status InboxTables::open(sqlite3* connection, const std::string& path, std::function<std::int64_t()> clock) {
    db = connection;
    now_ms = std::move(clock);
    // Row columns, in this order wherever a whole message is read: see read_row().
#define HUBGATE_INBOX_ROW "seq, device_id, message_id, enqueued_ms, expires_ms, delivery_count, ack, props, body"
    struct {
        StmtPtr* stmt;
        std::string_view sql;
    } const statements[] = {
        {&find_stmt, "SELECT seq FROM c2d_inbox WHERE device_id = ? AND message_id = ?"},
        {&device_count_stmt, "SELECT count(*) FROM c2d_inbox WHERE device_id = ?"},
        {&insert_stmt, "INSERT INTO c2d_inbox (" HUBGATE_INBOX_ROW ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&next_stmt, "SELECT " HUBGATE_INBOX_ROW " FROM c2d_inbox WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT 1"},
        {&set_count_stmt, "UPDATE c2d_inbox SET delivery_count = ? WHERE seq = ?"},
        {&delete_stmt, "DELETE FROM c2d_inbox WHERE seq = ?"},
        {&take_expired_stmt, "DELETE FROM c2d_inbox WHERE expires_ms <= ? RETURNING " HUBGATE_INBOX_ROW},
        {&devices_stmt, "SELECT DISTINCT device_id FROM c2d_inbox ORDER BY device_id"},
        {&seen_stmt, "INSERT INTO known_devices (id, first_seen_ms) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"},
        {&route_stmt, "INSERT INTO device_routes (id, rule, captures, via, updated_ms) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, captures = excluded.captures, "
                      "via = excluded.via, updated_ms = excluded.updated_ms"},
        {&update_seq_stmt, "UPDATE meta SET inbox_last_seq = ? WHERE id = 1"},
    };
#undef HUBGATE_INBOX_ROW
    for (const auto& s : statements) {
        auto p = prepare(db, s.sql);
        if (!p) return Error{"store " + path + ": " + p.error()};
        *s.stmt = std::move(p).value();
    }
    auto seq = query_int(db, "SELECT inbox_last_seq FROM meta WHERE id = 1");
    if (!seq) return Error{"store " + path + ": " + seq.error()};
    // The inbox is bounded by queue_depth per device, so counting it once at open is cheap.
    auto n = query_int(db, "SELECT count(*) FROM c2d_inbox");
    if (!n) return Error{"store " + path + ": " + n.error()};
    last_seq = *seq;
    count->store(static_cast<std::uint64_t>(*n));
    begin();
    return std::nullopt;
}

void InboxTables::register_metrics(metrics::Registry& registry) {
    auto c = count;
    registry.gauge_fn("hubgate_c2d_inbox_messages", "C2D messages queued in the store's inbox", {},
                      [c] { return static_cast<double>(c->load(std::memory_order_relaxed)); });
}

void InboxTables::close() noexcept {
    for (auto* s : {&find_stmt, &device_count_stmt, &insert_stmt, &next_stmt, &set_count_stmt, &delete_stmt,
                    &take_expired_stmt, &devices_stmt, &seen_stmt, &route_stmt, &update_seq_stmt})
        s->reset();
}

bool InboxTables::end() {
    if (tx_last_seq == last_seq) return true;
    sqlite3_stmt* s = update_seq_stmt.get();
    ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, tx_last_seq);
    return sqlite3_step(s) == SQLITE_DONE;
}

}  // namespace detail

namespace {

using detail::InboxTables;
using detail::InboxWork;
using detail::ResetGuard;

// Empty message ids cannot be deduplicated; each gets a key of its own that no valid message id can
// take (message ids are printable ASCII), so UNIQUE(device_id, message_id) never merges them.
std::string dedup_key(const C2dMessage& m, std::int64_t seq) {
    if (!m.message.system.message_id.empty()) return m.message.system.message_id;
    return "\x01" + std::to_string(seq);
}

// Reads the HUBGATE_INBOX_ROW columns of the current row.
C2dMessage read_row(sqlite3_stmt* s) {
    C2dMessage m;
    m.seq = sqlite3_column_int64(s, 0);
    m.message.device_id.assign(detail::column_bytes(s, 1));
    m.message.enqueued_ms = sqlite3_column_int64(s, 3);
    m.expires_ms = sqlite3_column_int64(s, 4);
    m.delivery_count = static_cast<std::uint32_t>(sqlite3_column_int64(s, 5));
    const auto ack = sqlite3_column_int64(s, 6);
    m.ack = ack >= 0 && ack <= 3 ? static_cast<AckMode>(ack) : AckMode::none;
    if (auto e = decode_properties(detail::column_bytes(s, 7), m.message.system, m.message.properties)) {
        // Hand it over with its id rather than stall the device's queue behind it forever.
        spdlog::error("store: C2D inbox row seq {} has corrupt properties ({}); using its message id only",
                      m.seq, e->reason);
        m.message.system = {};
        m.message.properties.clear();
        const auto key = detail::column_bytes(s, 2);
        if (!key.starts_with('\x01')) m.message.system.message_id.assign(key);
    }
    m.message.body.assign(detail::column_bytes(s, 8));
    return m;
}

class PutWork final : public InboxWork {
public:
    PutWork(C2dMessage m, std::uint32_t depth, std::function<void(InboxPut, std::int64_t)> done)
        : m_(std::move(m)), depth_(depth), done_(std::move(done)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        result_ = InboxPut::failed;
        seq_ = 0;
        const auto& device = m_.message.device_id;
        const auto& id = m_.message.system.message_id;
        if (!id.empty()) {
            sqlite3_stmt* s = t.find_stmt.get();
            ResetGuard reset(s);
            detail::bind_text(s, 1, device);
            detail::bind_text(s, 2, id);
            const int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                result_ = InboxPut::duplicate;
                seq_ = sqlite3_column_int64(s, 0);
                return true;
            }
            if (rc != SQLITE_DONE) return false;
        }
        {
            sqlite3_stmt* s = t.device_count_stmt.get();
            ResetGuard reset(s);
            detail::bind_text(s, 1, device);
            if (sqlite3_step(s) != SQLITE_ROW) return false;
            if (sqlite3_column_int64(s, 0) >= static_cast<std::int64_t>(depth_)) {
                result_ = InboxPut::queue_full;
                return true;
            }
        }
        if (m_.message.enqueued_ms == 0) m_.message.enqueued_ms = t.now_ms();
        const std::int64_t seq = t.tx_last_seq + 1;
        const std::string key = dedup_key(m_, seq);
        encode_properties(m_.message.system, m_.message.properties, t.props_buf);
        sqlite3_stmt* s = t.insert_stmt.get();
        ResetGuard reset(s);
        sqlite3_bind_int64(s, 1, seq);
        detail::bind_text(s, 2, device);
        detail::bind_text(s, 3, key);
        sqlite3_bind_int64(s, 4, m_.message.enqueued_ms);
        sqlite3_bind_int64(s, 5, m_.expires_ms);
        sqlite3_bind_int64(s, 6, m_.delivery_count);
        sqlite3_bind_int(s, 7, static_cast<int>(m_.ack));
        detail::bind_blob(s, 8, t.props_buf);
        detail::bind_blob(s, 9, m_.message.body);
        if (sqlite3_step(s) != SQLITE_DONE) return false;
        t.tx_last_seq = seq;
        ++t.tx_count;
        m_.seq = seq;
        result_ = InboxPut::queued;
        seq_ = seq;
        return true;
    }

    void finish(bool committed) override {
        if (!committed) {
            result_ = InboxPut::failed;
            seq_ = 0;
        }
        if (done_) done_(result_, seq_);
    }

private:
    C2dMessage m_;
    std::uint32_t depth_;
    std::function<void(InboxPut, std::int64_t)> done_;
    InboxPut result_ = InboxPut::failed;
    std::int64_t seq_ = 0;
};

class NextWork final : public InboxWork {
public:
    NextWork(std::string device, std::int64_t after, std::function<void(std::optional<C2dMessage>)> done)
        : device_(std::move(device)), after_(after), done_(std::move(done)) {}

    bool writes() const noexcept override { return false; }

    bool apply(InboxTables& t) override {
        found_.reset();
        sqlite3_stmt* s = t.next_stmt.get();
        ResetGuard reset(s);
        detail::bind_text(s, 1, device_);
        sqlite3_bind_int64(s, 2, after_);
        const int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) found_ = read_row(s);
        return rc == SQLITE_ROW || rc == SQLITE_DONE;
    }

    void finish(bool committed) override {
        if (!committed) found_.reset();
        if (done_) done_(std::move(found_));
    }

private:
    std::string device_;
    std::int64_t after_;
    std::function<void(std::optional<C2dMessage>)> done_;
    std::optional<C2dMessage> found_;
};

class SetDeliveryCountWork final : public InboxWork {
public:
    SetDeliveryCountWork(std::int64_t seq, std::uint32_t count, std::function<void()> done)
        : seq_(seq), count_(count), done_(std::move(done)) {}

    bool apply(InboxTables& t) override {
        sqlite3_stmt* s = t.set_count_stmt.get();
        ResetGuard reset(s);
        sqlite3_bind_int64(s, 1, count_);
        sqlite3_bind_int64(s, 2, seq_);
        return sqlite3_step(s) == SQLITE_DONE;
    }

    void finish(bool) override {
        if (done_) done_();
    }

private:
    std::int64_t seq_;
    std::uint32_t count_;
    std::function<void()> done_;
};

class RemoveWork final : public InboxWork {
public:
    RemoveWork(std::int64_t seq, std::function<void(bool)> done) : seq_(seq), done_(std::move(done)) {}

    bool apply(InboxTables& t) override {
        existed_ = false;
        sqlite3_stmt* s = t.delete_stmt.get();
        ResetGuard reset(s);
        sqlite3_bind_int64(s, 1, seq_);
        if (sqlite3_step(s) != SQLITE_DONE) return false;
        existed_ = sqlite3_changes(t.db) > 0;
        if (existed_) --t.tx_count;
        return true;
    }

    void finish(bool committed) override {
        if (done_) done_(committed && existed_);
    }

private:
    std::int64_t seq_;
    std::function<void(bool)> done_;
    bool existed_ = false;
};

class TakeExpiredWork final : public InboxWork {
public:
    TakeExpiredWork(std::int64_t now, std::function<void(std::vector<C2dMessage>)> done)
        : now_(now), done_(std::move(done)) {}

    bool apply(InboxTables& t) override {
        taken_.clear();
        sqlite3_stmt* s = t.take_expired_stmt.get();
        ResetGuard reset(s);
        sqlite3_bind_int64(s, 1, now_);
        for (;;) {
            const int rc = sqlite3_step(s);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return false;
            taken_.push_back(read_row(s));
        }
        t.tx_count -= std::min<std::uint64_t>(taken_.size(), t.tx_count);
        // RETURNING gives no order.
        std::sort(taken_.begin(), taken_.end(), [](const C2dMessage& a, const C2dMessage& b) { return a.seq < b.seq; });
        return true;
    }

    void finish(bool committed) override {
        if (!committed) taken_.clear();  // rolled back: the rows are still queued
        if (done_) done_(std::move(taken_));
    }

private:
    std::int64_t now_;
    std::function<void(std::vector<C2dMessage>)> done_;
    std::vector<C2dMessage> taken_;
};

// Runs a one-text-column SELECT into a list.
class ListWork final : public InboxWork {
public:
    using Pick = detail::StmtPtr InboxTables::*;
    ListWork(Pick stmt, std::function<void(std::vector<std::string>)> done) : stmt_(stmt), done_(std::move(done)) {}

    bool writes() const noexcept override { return false; }

    bool apply(InboxTables& t) override {
        items_.clear();
        sqlite3_stmt* s = (t.*stmt_).get();
        ResetGuard reset(s);
        for (;;) {
            const int rc = sqlite3_step(s);
            if (rc == SQLITE_DONE) return true;
            if (rc != SQLITE_ROW) return false;
            items_.emplace_back(detail::column_bytes(s, 0));
        }
    }

    void finish(bool committed) override {
        if (!committed) items_.clear();
        if (done_) done_(std::move(items_));
    }

private:
    Pick stmt_;
    std::function<void(std::vector<std::string>)> done_;
    std::vector<std::string> items_;
};

class DeviceSeenWork final : public InboxWork {
public:
    DeviceSeenWork(std::string id, std::function<void(bool)> done) : id_(std::move(id)), done_(std::move(done)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        added_ = false;
        sqlite3_stmt* s = t.seen_stmt.get();
        ResetGuard reset(s);
        detail::bind_text(s, 1, id_);
        sqlite3_bind_int64(s, 2, t.now_ms());
        if (sqlite3_step(s) != SQLITE_DONE) return false;
        added_ = sqlite3_changes(t.db) > 0;
        return true;
    }

    void finish(bool committed) override {
        if (done_) done_(committed && added_);
    }

private:
    std::string id_;
    std::function<void(bool)> done_;
    bool added_ = false;
};

class DeviceRouteWork final : public InboxWork {
public:
    explicit DeviceRouteWork(StoredRoute r) : r_(std::move(r)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        sqlite3_stmt* s = t.route_stmt.get();
        ResetGuard reset(s);
        detail::bind_text(s, 1, r_.device_id);
        detail::bind_text(s, 2, r_.rule);
        detail::bind_text(s, 3, r_.captures);
        detail::bind_text(s, 4, r_.via);
        sqlite3_bind_int64(s, 5, t.now_ms());
        return sqlite3_step(s) == SQLITE_DONE;
    }

    void finish(bool) override {}

private:
    StoredRoute r_;
};

}  // namespace

void Store::device_route(StoredRoute route) { enqueue_inbox(std::make_unique<DeviceRouteWork>(std::move(route))); }

void Store::inbox_put(C2dMessage m, std::uint32_t queue_depth, std::function<void(InboxPut, std::int64_t)> done) {
    enqueue_inbox(std::make_unique<PutWork>(std::move(m), queue_depth, std::move(done)));
}

void Store::inbox_next(std::string device_id, std::int64_t after_seq,
                       std::function<void(std::optional<C2dMessage>)> done) {
    enqueue_inbox(std::make_unique<NextWork>(std::move(device_id), after_seq, std::move(done)));
}

void Store::inbox_set_delivery_count(std::int64_t seq, std::uint32_t count, std::function<void()> done) {
    enqueue_inbox(std::make_unique<SetDeliveryCountWork>(seq, count, std::move(done)));
}

void Store::inbox_remove(std::int64_t seq, std::function<void(bool)> done) {
    enqueue_inbox(std::make_unique<RemoveWork>(seq, std::move(done)));
}

void Store::inbox_take_expired(std::int64_t now_ms, std::function<void(std::vector<C2dMessage>)> done) {
    enqueue_inbox(std::make_unique<TakeExpiredWork>(now_ms, std::move(done)));
}

void Store::inbox_devices(std::function<void(std::vector<std::string>)> done) {
    enqueue_inbox(std::make_unique<ListWork>(&InboxTables::devices_stmt, std::move(done)));
}

void Store::device_seen(std::string id, std::function<void(bool)> done) {
    enqueue_inbox(std::make_unique<DeviceSeenWork>(std::move(id), std::move(done)));
}

const char* to_string(InboxPut result) noexcept {
    switch (result) {
        case InboxPut::queued: return "queued";
        case InboxPut::duplicate: return "duplicate";
        case InboxPut::queue_full: return "queue_full";
        case InboxPut::failed: return "failed";
    }
    return "unknown";
}

}  // namespace hubgate::store
