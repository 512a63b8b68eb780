#include "gateway/app/store_ingest.hpp"

#include "store/store.hpp"

namespace hubgate::app {

void StoreIngest::ingest(std::vector<HubMessage> messages, std::function<void(IngestResult)> done) {
    store_.append(std::move(messages), [done = std::move(done)](store::AppendResult& r) {
        IngestResult out;
        out.durable = r.durable;
        out.reason = std::move(r.reason);
        out.rest = std::move(r.unstored);
        switch (r.outcome) {
            case store::AppendOutcome::durable: out.outcome = IngestOutcome::durable; break;
            case store::AppendOutcome::rejected_full:
            case store::AppendOutcome::disk_full: out.outcome = IngestOutcome::no_room; break;
            case store::AppendOutcome::failed: out.outcome = IngestOutcome::failed; break;
        }
        done(std::move(out));
    });
}

}  // namespace hubgate::app
