// The gateway's own twin at the hub, as pure functions (docs/twins.md): which reported patch to
// send next (coalesced, within IoT Hub's 32 KB and 10 levels), and what a GET of the twin means for
// each local device's desired properties. GatewayTwin (gateway_twin.hpp) runs them; unit-tested alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/model/result.hpp"
#include "store/twins.hpp"

namespace hubgate::twins {

// IoT Hub caps each of desired and reported at 32 KB (of compact JSON).
inline constexpr std::size_t kMaxTwinSideBytes = 32 * 1024;

// The bytes device D's section takes in `{"devices":{...}}`: `"<encoded D>":<document>,`.
std::size_t section_bytes(std::string_view device_id, std::size_t document_bytes);
// `{"devices":{}}`: what the gateway's reported document holds before any device's section.
inline constexpr std::size_t kEmptyDevicesBytes = 14;

struct Oversize {
    std::string id;
    std::int64_t version = 0;
    enum class Limit { bytes, depth } limit = Limit::bytes;
    std::size_t bytes = 0;  // the gateway's reported document with this device's section (bytes)
    int depth = 0;          // its nesting inside the gateway's twin (depth)
};

struct ReportedPlan {
    // `{"devices":{"<D>":<patch>,...}}`: the difference between what the hub acknowledged and each
    // device's document now (null for removed properties); empty when there is nothing to send.
    std::string patch;
    // What the hub holds once it acknowledged the patch: every device in it, and devices whose
    // change cancelled out (nothing to send, but no longer pending).
    std::vector<store::ReportedSent> sent;
    std::vector<Oversize> oversize;  // left out (still pending): counted and logged by the caller
    bool more = false;               // the patch is full: more devices wait for the next one
    std::size_t document_bytes = 0;  // the gateway's reported document at the hub after the patch
};

// Devices in id order; a patch holds at most `max_bytes` (one device's patch alone may be larger;
// the whole document never is). A device whose document would make the gateway's reported
// properties larger than `max_bytes`, or nest deeper than kMaxDepth there, is left out.
ReportedPlan plan_reported(const store::ReportedBacklog& backlog, std::size_t max_bytes = kMaxTwinSideBytes);

// The answer to a GET of the gateway's twin, as far as local devices are concerned.
struct GatewayDesired {
    std::optional<std::int64_t> version;                        // desired.$version
    std::vector<std::pair<std::string, std::string>> devices;   // decoded id, desired document
    // Devices named in desired.devices whose section cannot be used (not an object, a `$` name,
    // too deep): left as they are locally, neither replaced nor cleared.
    std::vector<std::string> unusable;
};

// `{"desired":{...,"devices":{...}},"reported":{...}}`. An error when the body is not such an
// object (then nothing changes locally); a desired document without `devices` names no device.
Result<GatewayDesired> read_gateway_twin(std::string_view body);

// The desired patch for each local device that makes its document the hub's: devices in the hub's
// document get the difference, devices with desired properties locally but absent from it get
// them removed (null each). `local`: (id, document) of devices whose desired document is not empty.
std::vector<std::pair<std::string, std::string>> desired_changes(
    const GatewayDesired& hub, const std::vector<std::pair<std::string, std::string>>& local);

// The hub's copy of `reported.devices` in the answer to a GET: (decoded id, document) for every
// device section that is an object. nullopt when the answer has no `reported` object (then it says
// nothing about what the hub holds).
std::optional<std::vector<std::pair<std::string, std::string>>> read_gateway_reported(std::string_view body);

// Devices whose acknowledged document (`local`: id, reported_sent, for every device with a twin)
// is not what the hub holds: (id, the hub's document, "{}" when it holds none). Their next patch
// is computed against what the hub really has (a twin reset or edited at the hub, a new hub).
std::vector<std::pair<std::string, std::string>> reported_rebase(
    const std::vector<std::pair<std::string, std::string>>& hub,
    const std::vector<std::pair<std::string, std::string>>& local);

// `$version` of a desired patch of the gateway's twin; nullopt without one.
std::optional<std::int64_t> patch_version(std::string_view body);

}  // namespace hubgate::twins
