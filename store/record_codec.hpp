// Compact binary layout of a hub message's properties (system + application), stored beside the
// body in one outbox row. The store's writer encodes into a reused buffer; OutboxReader decodes.
#pragma once

#include <string>
#include <string_view>

#include "gateway/model/hub_message.hpp"
#include "gateway/model/result.hpp"

namespace hubgate::store {

// Layout (version 1), all lengths and counts are unsigned LEB128 varints:
//   u8 version = 1
//   u8 mask        bit i set = system property i present, in SystemProperties declaration order
//   per set bit:   len, bytes
//   count          application properties, in order
//   per property:  name len, name bytes, u8 flag (0 = no value, 1 = value), [value len, value bytes]
inline constexpr unsigned char kRecordVersion = 1;

// Replaces `out`'s content (its capacity is kept: the writer reuses one buffer for every row).
void encode_properties(const SystemProperties& system, const AppProperties& props, std::string& out);

// Fills `system` and `props` (both reset first). A blob that does not follow the layout exactly
// (truncated, trailing bytes, bad flag, unknown version) is an error, never a crash.
Status decode_properties(std::string_view blob, SystemProperties& system, AppProperties& props);

}  // namespace hubgate::store
