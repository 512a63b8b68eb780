// The IngestSink adapters see, implemented on the store's group commit: translates the store's
// outcomes (rejected_full, disk_full) into the adapters' vocabulary (no_room: back off and retry).
#pragma once

#include "gateway/pipeline/ingest.hpp"

namespace hubgate::store {
class Store;
}

namespace hubgate::app {

class StoreIngest final : public IngestSink {
public:
    explicit StoreIngest(store::Store& store) : store_(store) {}
    void ingest(std::vector<HubMessage> messages, std::function<void(IngestResult)> done) override;

private:
    store::Store& store_;
};

}  // namespace hubgate::app
