// Pure CoAP request mapping for the telemetry path (no libcoap, no I/O, fuzzable): Uri-Path ->
// device id, Uri-Query -> properties, Content-Format -> content type. Used by coap_server.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/model/hub_message.hpp"

namespace hubgate {
class MessageIdGenerator;
}

namespace hubgate::coap {

// What a request path names.
struct PathMatch {
    enum class Kind {
        telemetry,       // devices/{id}/messages/events
        devicebound,     // devices/{id}/messages/devicebound (GET / Observe)
        c2d_lock,        // devices/{id}/messages/devicebound/{lock} (DELETE, ?reject)
        c2d_abandon,     // devices/{id}/messages/devicebound/{lock}/abandon (POST)
        twin,            // devices/{id}/twin (GET: both documents)
        twin_reported,   // devices/{id}/twin/reported (PATCH / POST: a merge-patch)
        twin_desired,    // devices/{id}/twin/desired (GET / Observe)
        bad_device_id,   // a known shape, but {id} breaks IoT Hub's id rule -> 4.00
        not_found,       // anything else -> 4.04
    };
    Kind kind = Kind::not_found;
    std::string device_id;
    std::string lock;  // c2d_lock / c2d_abandon: the ETag bytes (decoded from lowercase hex)
};

// `uri_path` is the request's Uri-Path options joined with '/', without a leading slash (what
// libcoap's coap_get_uri_path() gives). A trailing empty segment is tolerated.
PathMatch match_path(std::string_view uri_path);

// Lock tokens travel as ETags (at most 8 bytes) and in paths as their lowercase hex.
std::string lock_to_hex(std::string_view lock);
// The bytes of a 2..16-digit lowercase hex lock; nullopt when it is not one.
std::optional<std::string> lock_from_hex(std::string_view hex);

// Content-Format registry number -> content-type system property. Unregistered numbers travel as
// `application/vnd.coap.cf.N` so nothing is lost.
std::string content_type_for_format(std::uint32_t content_format);

// Why a request is refused, and the CoAP response code that says so.
struct Refusal {
    std::uint8_t code_class = 4;   // 4.xx
    std::uint8_t code_detail = 0;  // e.g. 0 for 4.00, 13 for 4.13
    const char* counter_reason = "";  // metrics label
    std::string text;                 // diagnostic payload (short, for the device owner)
};

struct TelemetryRequest {
    std::string_view device_id;
    std::string_view module_id;  // empty = none
    std::string_view query;      // Uri-Query options joined with '&'
    std::optional<std::uint32_t> content_format;
    std::string_view body;
};

// Builds and normalizes the hub message. The query is an IoT Hub property bag (URL-encoded
// `k=v&...`, `$.mid`-style keys are system properties); a `$.ct` in the query wins over the
// Content-Format option. Refusals: bad properties 4.00, over 256 KB 4.13.
struct BuildResult {
    std::optional<HubMessage> message;
    std::optional<Refusal> refusal;
};
BuildResult build_telemetry(const TelemetryRequest& req, MessageIdGenerator& ids);

// A twin reported patch (docs/coap.md, "Device twins") is JSON: no Content-Format, 50
// (application/json) or 52 (application/merge-patch+json, RFC 7386's own type) is taken; any other
// is 4.15 before the body is read.
std::optional<Refusal> check_twin_patch_format(std::optional<std::uint32_t> content_format);

}  // namespace hubgate::coap
