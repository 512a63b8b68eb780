// libFuzzer target: the `cbor` decoder (RFC 8949 §6.1 to JSON, through libcbor). Whatever decodes
// must be one valid UTF-8 JSON text equal to the document; a refusal always says why. Hostile
// nesting must be refused, not overflow the stack. Seeds: corpus/cbor/. Run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hubgate::translate;
    DecodeInput in;
    in.bytes = std::string_view(reinterpret_cast<const char*>(data), size);
    in.want_doc = true;
    const Decoded d = decode(Format::cbor, in);
    if (d.status != DecodeStatus::ok) {
        if (d.reason.empty() || d.status != DecodeStatus::bad_payload) std::abort();
        return 0;
    }
    if (!d.is_json || !d.has_doc || d.source_content_type != "application/cbor") std::abort();
    // nlohmann refuses invalid UTF-8, so a body it parses is UTF-8 JSON.
    const nlohmann::json again = nlohmann::json::parse(d.body, nullptr, false);
    if (again.is_discarded() || again != d.doc) std::abort();

    in.want_doc = false;  // the body does not depend on want_doc
    const Decoded body_only = decode(Format::cbor, in);
    if (body_only.status != DecodeStatus::ok || body_only.body != d.body || body_only.has_doc) std::abort();
    return 0;
}
