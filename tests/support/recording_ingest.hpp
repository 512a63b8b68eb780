// An in-process IngestSink for adapter tests: records what it is given and answers durable (or
// no_room while `full` is set) from another thread, as the store's writer would.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/pipeline/ingest.hpp"

namespace hubgate::test {

struct RecordingIngest : IngestSink {
    void ingest(std::vector<HubMessage> messages, std::function<void(IngestResult)> done) override {
        IngestResult r;
        if (full) {
            r.outcome = IngestOutcome::no_room;
            r.reason = "store is full";
            r.rest = std::move(messages);
        } else {
            std::lock_guard lock(mu);
            r.durable = messages.size();
            for (auto& m : messages) stored.push_back(std::move(m));
        }
        std::thread([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); }).detach();
    }
    std::vector<HubMessage> messages() {
        std::lock_guard lock(mu);
        return stored;
    }
    std::mutex mu;
    std::vector<HubMessage> stored;
    std::atomic<bool> full{false};
};

}  // namespace hubgate::test
