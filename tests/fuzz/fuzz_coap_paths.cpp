// libFuzzer target: the CoAP request mapping hubgate writes itself (adapters/coap/coap_paths.hpp).
// Input: "CONTENT_FORMAT\nURI_PATH\nURI_QUERY\nBODY" (empty or non-numeric first line = no
// Content-Format option). Seeds: corpus/coap_paths/. Run by tests/fuzz/run.sh.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/coap/coap_paths.hpp"
#include "gateway/model/message_id.hpp"
#include "gateway/model/validation.hpp"

namespace {

std::string_view next_line(std::string_view& rest) {
    const auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    return line;
}

void require(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using hubgate::coap::PathMatch;
    static hubgate::MessageIdGenerator ids;  // one per process: building it per input costs more

    std::string_view rest(reinterpret_cast<const char*>(data), size);
    const auto cf_text = next_line(rest);
    const auto path = next_line(rest);
    const auto query = next_line(rest);
    const auto body = rest;

    std::optional<std::uint32_t> cf;
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(cf_text.data(), cf_text.data() + cf_text.size(), n);
    if (ec == std::errc{} && end == cf_text.data() + cf_text.size()) cf = n;

    if (cf) {
        const auto ct = hubgate::coap::content_type_for_format(*cf);
        require(!ct.empty() && ct == hubgate::coap::content_type_for_format(*cf));
    }

    const PathMatch m = hubgate::coap::match_path(path);
    switch (m.kind) {
        case PathMatch::Kind::not_found:
            require(m.device_id.empty());
            return 0;
        case PathMatch::Kind::bad_device_id:
            // coap_server answers 4.00 here and never builds a message (build_telemetry trusts
            // the id it is given), so the harness stops here too.
            require(!hubgate::is_hub_id(m.device_id));
            return 0;
        case PathMatch::Kind::telemetry:
            // An accepted id obeys IoT Hub's rule and is exactly the second path segment.
            require(hubgate::is_hub_id(m.device_id));
            require(!m.device_id.empty() && m.device_id.size() <= 128);
            require(path.find("devices/" + m.device_id + "/messages/events") !=
                    std::string_view::npos);
            break;
        case PathMatch::Kind::devicebound:
        case PathMatch::Kind::c2d_lock:
        case PathMatch::Kind::c2d_abandon:
        case PathMatch::Kind::twin:
        case PathMatch::Kind::twin_reported:
        case PathMatch::Kind::twin_desired: {
            // The C2D and twin resources: the same id rule, the id the second segment, and the
            // segment after it the resource's own.
            require(hubgate::is_hub_id(m.device_id));
            require(!m.device_id.empty() && m.device_id.size() <= 128);
            const bool twin = m.kind == PathMatch::Kind::twin || m.kind == PathMatch::Kind::twin_reported ||
                              m.kind == PathMatch::Kind::twin_desired;
            require(path.find("devices/" + m.device_id + (twin ? "/twin" : "/messages/devicebound")) !=
                    std::string_view::npos);
            if (m.kind == PathMatch::Kind::c2d_lock || m.kind == PathMatch::Kind::c2d_abandon) {
                // The lock is the ETag the device was given: 1 to 8 bytes, written back as lowercase hex.
                require(!m.lock.empty() && m.lock.size() <= 8);
                require(path.find(hubgate::coap::lock_to_hex(m.lock)) != std::string_view::npos);
            } else {
                require(m.lock.empty());
            }
            return 0;
        }
    }

    const hubgate::coap::TelemetryRequest req{m.device_id, {}, query, cf, body};
    const auto r = hubgate::coap::build_telemetry(req, ids);
    require(r.message.has_value() != r.refusal.has_value());  // exactly one outcome
    if (r.refusal) {
        require(r.refusal->code_class == 4);
        require(r.refusal->code_detail == 0 || r.refusal->code_detail == 13);
        require(!r.refusal->text.empty() && r.refusal->counter_reason[0] != '\0');
        return 0;
    }
    // The message carries the path's device id and the body unchanged.
    require(r.message->device_id == m.device_id);
    require(r.message->body == body);
    require(!r.message->system.message_id.empty());
    if (cf) require(!r.message->system.content_type.empty());
    return 0;
}
