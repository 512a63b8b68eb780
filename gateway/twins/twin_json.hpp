// The JSON side of device twins (docs/twins.md): RFC 7386 merge-patch, the twin document IoT Hub's
// SDKs expect from a GET, and the key encoding of device ids inside the gateway's own twin.
// Pure functions, unit-tested alone; nlohmann stays in the .cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate::twins {

// IoT Hub's limit on the nesting of twin properties; a patch deeper than this is refused.
inline constexpr int kMaxDepth = 10;

// Applies `patch` (a JSON object) to `document` (a JSON object) by JSON merge-patch: members set to
// null are removed, objects merge recursively, anything else replaces. Keys starting with `$` are
// refused (IoT Hub reserves them), as is nesting over kMaxDepth. Returns the new document's text.
Result<std::string> merge_patch(std::string_view document, std::string_view patch);

// The merge patch that turns `from` into `to` (JSON objects without null members, as stored):
// members gone from `to` as null, changed ones with their new value, objects compared member by
// member. "{}" when the two are equal. merge_patch(from, diff_patch(from, to)) == to.
std::string diff_patch(std::string_view from, std::string_view to);

// How deep a JSON document nests, counting objects as IoT Hub counts twin levels ({"a":1} is 1,
// a scalar 0); -1 when it is not JSON.
int nesting(std::string_view document);

// `{"desired":{...,"$version":n},"reported":{...,"$version":m}}`: the body of a twin GET answer.
std::string twin_document(std::string_view desired, std::int64_t desired_version, std::string_view reported,
                          std::int64_t reported_version);

// `patch` (a JSON object) with `"$version":V` added: the body of a desired-property notification.
std::string with_version(std::string_view patch, std::int64_t version);

// `{"errorCode":C,"message":M}`: the SDKs fail a twin call only on such a body (never an empty one).
std::string error_body(int error_code, std::string_view message);

// A device id as a key of the gateway's own twin: `%`, `.`, `$` and space percent-encoded (%25,
// %2E, %24, %20), because twin keys may not hold `.`, `$` or space. decode_key reverses it (nullopt
// for a bad escape).
std::string encode_key(std::string_view device_id);
std::optional<std::string> decode_key(std::string_view key);

}  // namespace hubgate::twins
