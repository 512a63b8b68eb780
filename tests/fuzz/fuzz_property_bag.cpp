// libFuzzer target: IoT Hub property bags (the tail of device topics). Whatever parses must format
// and re-parse to the same entries. Seeds: corpus/property_bag/. Run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/model/property_bag.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bag(reinterpret_cast<const char*>(data), size);
    auto parsed = hubgate::parse_property_bag(bag);
    if (!parsed) {
        if (parsed.error().empty()) std::abort();  // a refusal always says why
        return 0;
    }
    const std::string formatted = hubgate::format_property_bag(*parsed);
    auto again = hubgate::parse_property_bag(formatted);
    if (!again || *again != *parsed) std::abort();
    return 0;
}
