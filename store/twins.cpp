// Store::twin_get / twin_update: each is one InboxWork the writer thread runs inside its commit
// group (store.cpp), so a twin change commits with the outbox and its callback runs after COMMIT.
#include "store/twins.hpp"

#include "store/inbox_work.hpp"
#include "store/store.hpp"

namespace hubgate::store {
namespace {

using detail::InboxTables;
using detail::InboxWork;
using detail::ResetGuard;

// Twin requests are rare next to messages: statements are prepared per request, not kept.
bool read_row(sqlite3* db, const std::string& id, StoredTwin& out, bool& found) {
    auto s = detail::prepare(
        db, "SELECT desired, desired_version, reported, reported_version FROM device_twins WHERE id = ?");
    if (!s) return false;
    sqlite3_stmt* st = s->get();
    detail::bind_text(st, 1, id);
    const int rc = sqlite3_step(st);
    found = rc == SQLITE_ROW;
    out = StoredTwin{};
    if (found) {
        out.desired = std::string(detail::column_bytes(st, 0));
        out.desired_version = sqlite3_column_int64(st, 1);
        out.reported = std::string(detail::column_bytes(st, 2));
        out.reported_version = sqlite3_column_int64(st, 3);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

class TwinGetWork final : public InboxWork {
public:
    TwinGetWork(std::string id, std::function<void(std::optional<StoredTwin>)> done)
        : id_(std::move(id)), done_(std::move(done)) {}

    bool writes() const noexcept override { return false; }

    bool apply(InboxTables& t) override {
        bool found = false;
        return read_row(t.db, id_, twin_, found);
    }

    void finish(bool committed) override {
        if (done_) done_(committed ? std::optional<StoredTwin>(std::move(twin_)) : std::nullopt);
    }

private:
    std::string id_;
    std::function<void(std::optional<StoredTwin>)> done_;
    StoredTwin twin_;
};

class TwinUpdateWork final : public InboxWork {
public:
    TwinUpdateWork(std::string id, TwinSide side, TwinChange change, std::function<void(TwinUpdate)> done)
        : id_(std::move(id)), side_(side), change_(std::move(change)), done_(std::move(done)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        result_ = TwinUpdate{};
        written_ = false;
        StoredTwin cur;
        bool found = false;
        if (!read_row(t.db, id_, cur, found)) return false;
        const bool desired = side_ == TwinSide::desired;
        auto next = change_(desired ? cur.desired : cur.reported);
        if (!next) {
            result_.refusal = next.error();
            return true;  // nothing written; the group goes on
        }
        std::int64_t& version = desired ? cur.desired_version : cur.reported_version;
        ++version;  // a new row starts both sides at 1 (IoT Hub's first version): its first change is 2
        (desired ? cur.desired : cur.reported) = std::move(next.value());
        auto s = detail::prepare(t.db,
                                 "INSERT INTO device_twins (id, desired, desired_version, reported, reported_version, "
                                 "updated_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                                 "desired = excluded.desired, desired_version = excluded.desired_version, "
                                 "reported = excluded.reported, reported_version = excluded.reported_version, "
                                 "updated_ms = excluded.updated_ms");
        if (!s) return false;
        sqlite3_stmt* st = s->get();
        detail::bind_text(st, 1, id_);
        detail::bind_text(st, 2, cur.desired);
        sqlite3_bind_int64(st, 3, cur.desired_version);
        detail::bind_text(st, 4, cur.reported);
        sqlite3_bind_int64(st, 5, cur.reported_version);
        sqlite3_bind_int64(st, 6, t.now_ms());
        if (sqlite3_step(st) != SQLITE_DONE) return false;
        result_.version = version;
        result_.document = desired ? std::move(cur.desired) : std::move(cur.reported);
        written_ = true;
        return true;
    }

    void finish(bool committed) override {
        if (!committed) {
            result_.committed = false;
            result_.document.clear();
        } else {
            result_.committed = written_;
        }
        if (done_) done_(std::move(result_));
    }

private:
    std::string id_;
    TwinSide side_;
    TwinChange change_;
    std::function<void(TwinUpdate)> done_;
    TwinUpdate result_;
    bool written_ = false;
};

// The gateway twin's uplink (docs/twins.md): pending reported changes and the acknowledged sizes.
class ReportedBacklogWork final : public InboxWork {
public:
    explicit ReportedBacklogWork(std::function<void(std::optional<ReportedBacklog>)> done) : done_(std::move(done)) {}

    bool writes() const noexcept override { return false; }

    bool apply(InboxTables& t) override {
        backlog_ = ReportedBacklog{};
        auto s = detail::prepare(t.db,
                                 "SELECT id, reported, reported_version, reported_sent FROM device_twins "
                                 "WHERE reported_version > reported_sent_version ORDER BY id");
        if (!s) return false;
        int rc = 0;
        while ((rc = sqlite3_step(s->get())) == SQLITE_ROW) {
            ReportedPending p;
            p.id = std::string(detail::column_bytes(s->get(), 0));
            p.reported = std::string(detail::column_bytes(s->get(), 1));
            p.reported_version = sqlite3_column_int64(s->get(), 2);
            p.sent = std::string(detail::column_bytes(s->get(), 3));
            backlog_.pending.push_back(std::move(p));
        }
        if (rc != SQLITE_DONE) return false;
        auto z = detail::prepare(t.db,
                                 "SELECT id, length(CAST(reported_sent AS BLOB)) FROM device_twins "
                                 "WHERE reported_sent <> '{}' ORDER BY id");
        if (!z) return false;
        while ((rc = sqlite3_step(z->get())) == SQLITE_ROW)
            backlog_.sent_bytes.emplace_back(std::string(detail::column_bytes(z->get(), 0)),
                                             static_cast<std::size_t>(sqlite3_column_int64(z->get(), 1)));
        return rc == SQLITE_DONE;
    }

    void finish(bool committed) override {
        if (done_) done_(committed ? std::optional<ReportedBacklog>(std::move(backlog_)) : std::nullopt);
    }

private:
    std::function<void(std::optional<ReportedBacklog>)> done_;
    ReportedBacklog backlog_;
};

class ReportedSentWork final : public InboxWork {
public:
    ReportedSentWork(std::vector<ReportedSent> sent, std::function<void(bool)> done)
        : sent_(std::move(sent)), done_(std::move(done)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        // Never back: a slower acknowledgement of an older patch must not undo a newer one's.
        auto s = detail::prepare(t.db,
                                 "UPDATE device_twins SET reported_sent = ?, reported_sent_version = ? "
                                 "WHERE id = ? AND reported_sent_version < ? AND reported_sent = ?");
        if (!s) return false;
        for (const auto& r : sent_) {
            sqlite3_stmt* st = s->get();
            sqlite3_reset(st);
            detail::bind_text(st, 1, r.document);
            sqlite3_bind_int64(st, 2, r.version);
            detail::bind_text(st, 3, r.id);
            sqlite3_bind_int64(st, 4, r.version);
            detail::bind_text(st, 5, r.base);
            if (sqlite3_step(st) != SQLITE_DONE) return false;
        }
        return true;
    }

    void finish(bool committed) override {
        if (done_) done_(committed);
    }

private:
    std::vector<ReportedSent> sent_;
    std::function<void(bool)> done_;
};

// (id, text) rows of one query: every non-empty desired document, every acknowledged reported one.
class TwinColumnWork final : public InboxWork {
public:
    using Rows = std::vector<std::pair<std::string, std::string>>;
    TwinColumnWork(const char* sql, std::function<void(std::optional<Rows>)> done) : sql_(sql), done_(std::move(done)) {}

    bool writes() const noexcept override { return false; }

    bool apply(InboxTables& t) override {
        rows_.clear();
        auto s = detail::prepare(t.db, sql_);
        if (!s) return false;
        int rc = 0;
        while ((rc = sqlite3_step(s->get())) == SQLITE_ROW)
            rows_.emplace_back(std::string(detail::column_bytes(s->get(), 0)),
                               std::string(detail::column_bytes(s->get(), 1)));
        return rc == SQLITE_DONE;
    }

    void finish(bool committed) override {
        if (done_) done_(committed ? std::optional<Rows>(std::move(rows_)) : std::nullopt);
    }

private:
    const char* sql_;
    std::function<void(std::optional<Rows>)> done_;
    Rows rows_;
};

class ReportedRebaseWork final : public InboxWork {
public:
    ReportedRebaseWork(std::vector<std::pair<std::string, std::string>> held, std::function<void(bool)> done)
        : held_(std::move(held)), done_(std::move(done)) {}

    bool grows() const noexcept override { return true; }

    bool apply(InboxTables& t) override {
        auto s = detail::prepare(t.db,
                                 "UPDATE device_twins SET reported_sent = ?, reported_sent_version = 0 WHERE id = ?");
        if (!s) return false;
        for (const auto& [id, doc] : held_) {
            sqlite3_stmt* st = s->get();
            sqlite3_reset(st);
            detail::bind_text(st, 1, doc);
            detail::bind_text(st, 2, id);
            if (sqlite3_step(st) != SQLITE_DONE) return false;
        }
        return true;
    }

    void finish(bool committed) override {
        if (done_) done_(committed);
    }

private:
    std::vector<std::pair<std::string, std::string>> held_;
    std::function<void(bool)> done_;
};

}  // namespace

void Store::twin_reported_backlog(std::function<void(std::optional<ReportedBacklog>)> done) {
    enqueue_inbox(std::make_unique<ReportedBacklogWork>(std::move(done)));
}

void Store::twin_reported_sent(std::vector<ReportedSent> sent, std::function<void(bool)> done) {
    enqueue_inbox(std::make_unique<ReportedSentWork>(std::move(sent), std::move(done)));
}

void Store::twin_desired_all(std::function<void(std::optional<std::vector<std::pair<std::string, std::string>>>)> done) {
    enqueue_inbox(std::make_unique<TwinColumnWork>(
        "SELECT id, desired FROM device_twins WHERE desired <> '{}' ORDER BY id", std::move(done)));
}

void Store::twin_reported_acked_all(
    std::function<void(std::optional<std::vector<std::pair<std::string, std::string>>>)> done) {
    enqueue_inbox(std::make_unique<TwinColumnWork>("SELECT id, reported_sent FROM device_twins ORDER BY id",
                                                   std::move(done)));
}

void Store::twin_reported_rebase(std::vector<std::pair<std::string, std::string>> held, std::function<void(bool)> done) {
    enqueue_inbox(std::make_unique<ReportedRebaseWork>(std::move(held), std::move(done)));
}

void Store::twin_get(std::string device_id, std::function<void(std::optional<StoredTwin>)> done) {
    enqueue_inbox(std::make_unique<TwinGetWork>(std::move(device_id), std::move(done)));
}

void Store::twin_update(std::string device_id, TwinSide side, TwinChange change, std::function<void(TwinUpdate)> done) {
    enqueue_inbox(std::make_unique<TwinUpdateWork>(std::move(device_id), side, std::move(change), std::move(done)));
}

Result<std::optional<StoredTwin>> read_twin(const std::string& db_path, const std::string& device_id) {
    auto db = detail::open_db(db_path, SQLITE_OPEN_READONLY);
    if (!db) return Error{db.error()};
    // A store no gateway of this version has opened yet has no twins table: no twin yet either.
    if (auto v = detail::query_int(db->get(), "PRAGMA user_version"); v && *v < 6) return std::optional<StoredTwin>{};
    StoredTwin twin;
    bool found = false;
    if (!read_row(db->get(), device_id, twin, found))
        return Error{"cannot read the twin of " + device_id + " from " + db_path + ": " + detail::errmsg(db->get())};
    if (!found) return std::optional<StoredTwin>{};
    return std::optional<StoredTwin>(std::move(twin));
}

}  // namespace hubgate::store
