// libFuzzer target: the `json` decoder's own validating scanner (the hot path, no DOM) against
// nlohmann::json::accept, which a rule's document comes from: what the scanner accepts nlohmann
// must accept (else a payload could pass without want_doc and fail with it), and they may differ
// only where nlohmann takes a NUL byte for the end of the input ("7\0junk"), which the scanner
// refuses as trailing bytes. Seeds: corpus/json/. Run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/translate/decoder.hpp"
#include "gateway/translate/decoders.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hubgate::translate;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // nlohmann skips one leading UTF-8 BOM itself; the scanner never does (decode_json drops it).
    const std::string_view bom = "\xEF\xBB\xBF";
    const std::string_view scanned = text.substr(0, 3) == bom ? text.substr(3) : text;
    const detail::JsonCheck mine = detail::check_json(scanned);
    const bool theirs = nlohmann::json::accept(text.begin(), text.end());
    if (mine.ok && !theirs) std::abort();
    if (!mine.ok && theirs && scanned.find('\0') == std::string_view::npos) std::abort();
    if (!mine.ok && mine.offset > scanned.size()) std::abort();

    DecodeInput in;
    in.bytes = text;
    in.want_doc = (size & 1) != 0;
    const Decoded d = decode(Format::json, in);
    if ((d.status == DecodeStatus::ok) != mine.ok) std::abort();
    if (d.status == DecodeStatus::ok && (d.body != scanned || d.has_doc != in.want_doc)) std::abort();
    if (d.status != DecodeStatus::ok && d.reason.empty()) std::abort();
    return 0;
}
