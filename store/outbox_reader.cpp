// The reader side of the outbox: its own connection, one short read transaction per read() so the
// writer's checkpoints are never held back for long.
#include "store/outbox_ring.hpp"
#include "store/record_codec.hpp"
#include "store/sqlite_util.hpp"
#include "store/store.hpp"

namespace hubgate::store {

struct OutboxReader::Impl {
    std::string path;
    detail::DbPtr db;
    detail::StmtPtr select;
    bool cached = false;  // rows were read since the cache was last released
};

OutboxReader::OutboxReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OutboxReader::~OutboxReader() {
    if (impl_) impl_->select.reset();  // before the connection: a connection with live statements stays open
}

Result<std::unique_ptr<OutboxReader>> Store::open_reader() {
    auto impl = std::make_unique<OutboxReader::Impl>();
    impl->path = path();
    auto db = detail::open_db(impl->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
    if (!db) return Error{db.error()};
    impl->db = std::move(db).value();
    // Every table of the ring (outbox_ring.hpp), merged in seq order; rows at or below the marker
    // are acknowledged (their table is emptied once all its rows are). One statement: one read
    // transaction sees the marker and the rows together.
    auto select = detail::prepare(
        impl->db.get(), detail::outbox_union("seq, enqueued_ms, device_id, module_id, size, props, body",
                                             "seq > max(?1, (SELECT acked_seq FROM meta WHERE id = 1))") +
                            " ORDER BY 1 LIMIT ?2");
    if (!select) return Error{"store reader " + impl->path + ": " + select.error()};
    // Reads walk the outbox once, oldest first: cached rows are never read again, only the b-tree's
    // interior pages are. 256 KiB instead of SQLite's 2 MiB.
    if (auto e = detail::exec(impl->db.get(), "PRAGMA cache_size = -256"))
        return Error{"store reader " + impl->path + ": " + e->reason};
    impl->select = std::move(select).value();
    return std::unique_ptr<OutboxReader>(new OutboxReader(std::move(impl)));
}

Status OutboxReader::read(std::int64_t after_seq, std::size_t byte_budget, std::size_t max_count,
                          std::vector<StoredMessage>& out) {
    std::size_t n = 0;
    // Overwrite elements in place and trim at the end: their strings keep their capacity, so a
    // steady batcher allocates nothing per message once the buffers have grown.
    auto finish = [&](Status status) {
        out.resize(n);
        if (n > 0) {
            impl_->cached = true;
        } else if (impl_->cached) {  // caught up with the writer: the backlog's pages are of no more use
            impl_->cached = false;
            sqlite3_db_release_memory(impl_->db.get());
        }
        return status;
    };
    if (max_count == 0) return finish(std::nullopt);
    sqlite3_stmt* s = impl_->select.get();
    detail::ResetGuard reset(s);
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(std::min<std::size_t>(max_count, INT64_MAX)));
    std::size_t used = 0;
    for (;;) {
        const int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return finish(Error{"store read failed: " + detail::errmsg(impl_->db.get())});
        const auto size = static_cast<std::size_t>(sqlite3_column_int64(s, 4));
        if (n > 0 && used + size > byte_budget) break;
        if (out.size() <= n) out.emplace_back();
        StoredMessage& sm = out[n];
        sm.seq = sqlite3_column_int64(s, 0);
        sm.stored_bytes = size;
        HubMessage& m = sm.message;
        m.enqueued_ms = sqlite3_column_int64(s, 1);
        m.device_id.assign(detail::column_bytes(s, 2));
        m.module_id.assign(detail::column_bytes(s, 3));
        if (auto e = decode_properties(detail::column_bytes(s, 5), m.system, m.properties))
            return finish(Error{"store row seq " + std::to_string(sm.seq) + ": " + e->reason});
        m.body.assign(detail::column_bytes(s, 6));
        used += size;
        ++n;
    }
    return finish(std::nullopt);
}

}  // namespace hubgate::store
