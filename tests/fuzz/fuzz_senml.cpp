// libFuzzer target: the `senml` decoder (RFC 8428 packs in JSON or CBOR, sniffed by the first
// byte). Whatever decodes must be resolved records: an array of objects, each with a valid name,
// an absolute time in chronological order, and one value field or a sum; the body must equal the
// document. A refusal always says why. Seeds: corpus/senml/. Run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoder.hpp"

namespace {

bool valid_name(const std::string& n) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != ':' && c != '.' && c != '/' && c != '_'))) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hubgate::translate;
    DecodeInput in;
    in.bytes = std::string_view(reinterpret_cast<const char*>(data), size);
    in.receive_ms = 1'700'000'000'123;
    in.want_doc = true;
    const Decoded d = decode(Format::senml, in);
    if (d.status != DecodeStatus::ok) {
        if (d.reason.empty() || d.status != DecodeStatus::bad_payload) std::abort();
        return 0;
    }
    if (!d.is_json || !d.has_doc || d.source_content_type.empty() || !d.doc.is_array()) std::abort();
    const nlohmann::json again = nlohmann::json::parse(d.body, nullptr, false);
    if (again.is_discarded() || again != d.doc) std::abort();

    double previous = -1e308;
    for (const nlohmann::json& r : d.doc) {
        if (!r.is_object()) std::abort();
        const auto n = r.find("n");
        const auto t = r.find("t");
        if (n == r.end() || !n->is_string() || !valid_name(n->get<std::string>())) std::abort();
        if (t == r.end() || !t->is_number()) std::abort();
        const double time = t->get<double>();
        if (time < previous) std::abort();  // RFC 8428 §4.6: chronological order
        previous = time;
        const int values = static_cast<int>(r.count("v") + r.count("vs") + r.count("vb") + r.count("vd"));
        if (values > 1 || (values == 0 && !r.contains("s"))) std::abort();
        for (const auto& [key, value] : r.items())
            if (!key.empty() && key.front() == 'b' && key != "bver") std::abort();  // bases resolved away
    }
    return 0;
}
