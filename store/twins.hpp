// Device twins in the store (docs/twins.md): per device the desired and reported JSON documents and
// their versions. The store keeps text and versions; what a change means (JSON merge-patch) is the
// caller's function, run on the writer thread inside the commit group so read-modify-write is atomic.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/model/result.hpp"

namespace hubgate::store {

// A device that never had a twin change reads as empty documents at version 1.
struct StoredTwin {
    std::string desired = "{}";
    std::int64_t desired_version = 1;
    std::string reported = "{}";
    std::int64_t reported_version = 1;
};

enum class TwinSide { desired, reported };

// Given the side's current document, the new one, or an error (nothing is written). It may run more
// than once (a retried commit group): it must depend on its argument only.
using TwinChange = std::function<Result<std::string>(const std::string& current)>;

struct TwinUpdate {
    bool committed = false;   // false: refused by the change (refusal set) or the store failed
    std::string refusal;      // the change function's error, for the device
    std::int64_t version = 0; // the side's version after the change
    std::string document;     // the side's document after the change
};

// Reported properties on their way to the hub (the gateway's own twin, `reported.devices.<D>`):
// what the writer reads for the gateway twin's uplink (docs/twins.md) and what it records once the
// hub acknowledged a patch.
struct ReportedPending {
    std::string id;
    std::string reported = "{}";       // the device's reported document now
    std::int64_t reported_version = 1;
    std::string sent = "{}";           // the document the hub last acknowledged
};

struct ReportedBacklog {
    std::vector<ReportedPending> pending;  // reported_version > reported_sent_version, by id
    // Every device whose acknowledged document is not empty: id and that document's size in bytes
    // (what the hub's copy of the gateway's reported properties holds).
    std::vector<std::pair<std::string, std::size_t>> sent_bytes;
};

// The hub acknowledged `document` at `version` for device `id`; recorded only if the device's
// acknowledged document is still `base` (the one the patch was the difference from: the GET on
// connect may have found the hub holding another meanwhile).
struct ReportedSent {
    std::string id;
    std::int64_t version = 0;
    std::string document;
    std::string base = "{}";
};

// Reads a device's twin through a read-only connection of its own (the CLI: `devices show`).
// nullopt: the device has no twin row yet.
Result<std::optional<StoredTwin>> read_twin(const std::string& db_path, const std::string& device_id);

}  // namespace hubgate::store
