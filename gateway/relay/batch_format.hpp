// The upstream wire format (docs/upstream-format.md): packs hub messages into one JSON-array batch
// body within IoT Hub's size rule, or formats one message unbatched. Pure code, used by the relay loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/model/hub_message.hpp"

namespace hubgate::relay {

inline constexpr std::string_view kBatchContentType = "application/vnd.microsoft.iothub.json";
inline constexpr std::string_view kBatchContentEncoding = "utf-8";

// What the batch message's own system properties ($.ct, $.ce) add to its size by IoT Hub's rule.
inline constexpr std::size_t kBatchPropertyBytes = kBatchContentType.size() + kBatchContentEncoding.size();
// hub_size of a batch with no element: "[]" plus the batch message's properties.
inline constexpr std::size_t kEmptyBatchHubSize = 2 + kBatchPropertyBytes;

// Packs messages oldest first into one batch body in a reused buffer.
class BatchBuilder {
public:
    explicit BatchBuilder(std::uint32_t max_batch_bytes);

    enum class Add {
        added,
        full,   // does not fit now: send this batch, start a new one with it
        alone,  // would not fit even an empty batch: send it unbatched
    };
    // Appends the message's element if the batch stays within max_batch_bytes; otherwise leaves the
    // batch untouched.
    Add add(const HubMessage& m);

    bool empty() const noexcept { return count_ == 0; }
    std::size_t count() const noexcept { return count_; }
    std::uint32_t max_batch_bytes() const noexcept { return max_; }

    // The finished batch body (JSON array text). Closes the array; idempotent until the next add/reset.
    const std::string& body();
    // Body size + the batch message's own property values, as IoT Hub counts it (closed or not).
    std::size_t hub_size() const noexcept;
    // hub_size / max_batch_bytes.
    double fill() const noexcept;
    // Empties the batch, keeping the buffer's capacity.
    void reset();

    // Exact byte length of the message's element in a batch body (without the ',' separator).
    static std::size_t element_size(const HubMessage& m);
    // `devices/{gw}/messages/events/%24.ct=application%2Fvnd.microsoft.iothub.json&%24.ce=utf-8`
    static std::string topic(std::string_view gateway_device_id);

private:
    std::uint32_t max_;
    std::string buf_;  // "[" elem ("," elem)* and, once body() was called, "]"
    std::size_t count_ = 0;
    bool closed_ = false;
};

// Unbatched: writes `devices/{gw}/messages/events/{bag}` into `topic` (replacing its contents, keeping
// its capacity), where the bag holds the message's system and application properties followed by
// `device-id` and (when the message has a module) `module-id`. The payload is m.body, unchanged.
void format_unbatched_topic(std::string& topic, std::string_view gateway_device_id, const HubMessage& m);
// hub_size(m) plus the `device-id` / `module-id` properties the unbatched form adds.
std::size_t unbatched_hub_size(const HubMessage& m);

}  // namespace hubgate::relay
