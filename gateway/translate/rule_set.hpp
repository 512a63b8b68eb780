// Compiled translation rules (DESIGN.md "Translation rules"): a segment tree over the rules'
// topic/path patterns (STYLE.md: mosquitto's subscription tree), compiled templates, and the
// rule engine that turns one inbound message into a hub message. Immutable once compiled; a
// reload compiles a new set and swaps it in whole. Pure: no I/O, no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/model/hub_message.hpp"
#include "gateway/model/result.hpp"
#include "gateway/translate/rule_spec.hpp"

namespace hubgate::translate {

struct CompileError {
    int line = 0;  // 0 = unknown
    std::string what;
};

enum class Transport { mqtt, coap };

// One message as an adapter received it, outside the IoT Hub dialect.
struct Inbound {
    Transport transport = Transport::mqtt;
    std::string_view listener;  // the listener's name ("" when unnamed: only rules without `listeners` apply)
    std::string_view topic;     // MQTT topic, or CoAP path with its leading '/' ("/sensors/t1")
    std::string_view payload;
    std::optional<std::uint16_t> content_format;  // CoAP only
    std::string_view auth_device;  // the authenticated device id; "" on auth = none listeners
    std::string_view client_id;    // MQTT client id (CoAP: "") -> {client} when auth_device is empty
    std::string_view default_module;  // the device's module, else the listener's module_id
    const AppProperties* query = nullptr;  // CoAP Uri-Query options, already parsed, or null
    std::int64_t receive_ms = 0;
};

enum class Verdict {
    accepted,        // message is ready for the door rules (normalize_message)
    unmatched,       // no rule matched: the listener's `unmatched` mode decides
    refused_decode,  // on_decode_error = "refuse" and the payload did not decode (CoAP 4.00)
    refused_format,  // on_decode_error = "refuse", Content-Format the rule cannot decode (CoAP 4.15)
    spoof,           // the rule's device id is not the connection's, nor one of its children
    bad_device_id,   // the rendered device or module id breaks IoT Hub's id rule
};
const char* to_string(Verdict v) noexcept;  // counter labels: "accepted", "unmatched", ...

// What C2D needs to reach a device later: the rule that last accepted a message from it and that
// message's captures (persisted per device by the gateway).
struct Route {
    std::string rule;  // rule name
    std::vector<std::pair<std::string, std::string>> captures;
};

struct Translation {
    Verdict verdict = Verdict::unmatched;
    HubMessage message;      // accepted (and raw decode errors): device, module, properties, body set
    std::string rule;        // the matching rule's name ("" when unmatched)
    std::string reason;      // for logs, when not accepted or when decode-error was set
    bool decode_error = false;  // accepted, but the body was kept raw with a decode-error property
    bool time_ignored = false;  // the rule's time pointer gave something that is not a time (counted)
    Route route;             // accepted only
};

// Answers whether `authenticated` may speak for `device` (a bridge's children glob). Never called
// when the two are equal or on open (auth = none) listeners.
using ChildPolicy = std::function<bool(std::string_view authenticated, std::string_view device)>;

class RuleSet {
public:
    // Compiles specs in file order. Errors (with the spec's lines) for bad patterns, unknown
    // placeholders, bad pointers, bad formats, listeners not in `listener_names`. On any error the
    // result is null and `errors` says why (every error of every rule). Each error takes its key's
    // line field when set, else the [[rule]] table's; `topic_line` serves `path` too.
    static std::shared_ptr<const RuleSet> compile(const std::vector<RuleSpec>& specs,
                                                  const std::vector<std::string>& listener_names,
                                                  const std::string& gateway_id,
                                                  std::vector<CompileError>& errors);
    ~RuleSet();

    bool empty() const noexcept;
    // Whether some rule applies to this listener name (MQTT: any SUBSCRIBE is granted there, and
    // `unmatched` defaults to drop).
    bool names_listener(std::string_view listener, Transport t) const noexcept;

    // Tries the rules whose pattern matches in.topic in file order, skipping those whose
    // `listeners` exclude in.listener and those whose {json:} templates name nothing (or not a
    // string or number) in the body; the first other one decides the verdict: a decode error
    // under `refuse`, bad_device_id, spoof, or accepted (a decode error under `raw` included). No
    // candidate left: unmatched. Thread-safe (per-thread scratch).
    //  - `{name}` never matches an empty topic level; on MQTT a first level starting with '$' is
    //    matched only by a literal segment (as MQTT wildcards treat $SYS).
    //  - Properties: the rule's, then CoAP query options whose names the rule does not set, then
    //    source-content-type or decode-error.
    //  - A raw body (decode error) sets no creation time and leaves time_ignored false.
    Translation translate(const Inbound& in, const ChildPolicy& children) const;

    // The MQTT topic a C2D message for a device takes, from its remembered route: nullopt when the
    // rule has no c2d_topic (or no longer exists): use IoT Hub's devicebound topic. An error when a
    // `{prop:NAME}` is missing from the message (the message is rejected with that reason), when the
    // route lacks a capture the rule now needs (the rule changed since), or when the rendering is
    // no MQTT topic name (a property value with + # or NUL). A property without a value renders "".
    std::optional<Result<std::string>> c2d_topic(const Route& route, const HubMessage& c2d) const;

private:
    struct Impl;
    explicit RuleSet(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::translate
