// The one seam through which device adapters hand messages to the gateway (STYLE.md: adapters know
// protocols, not SQLite). gateway/app implements it on top of the store's group commit.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "gateway/model/hub_message.hpp"

namespace hubgate {

enum class IngestOutcome {
    durable,    // every message is durable
    no_room,    // the store refused the rest for lack of room (reject-new, disk full): retry later
    failed,     // the store is closing or broken: the rest is not stored
};

struct IngestResult {
    std::size_t durable = 0;  // the first `durable` messages are durable; ack exactly those
    IngestOutcome outcome = IngestOutcome::durable;
    std::string reason;       // for logs and the device, when outcome != durable
    std::vector<HubMessage> rest;  // the messages not stored, in order, handed back for a retry
};

class IngestSink {
public:
    virtual ~IngestSink() = default;
    // Messages must already be normalized (validate at the door). `done` runs on another thread
    // (the store's writer) once the commit that holds them has finished: post back to your own.
    virtual void ingest(std::vector<HubMessage> messages, std::function<void(IngestResult)> done) = 0;
};

}  // namespace hubgate
