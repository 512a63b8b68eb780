// Result<T>: a value or a reason string written for the person who sees it.
// Used across stages for refusals (bad property bag, malformed token, bad config value).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hubgate {

struct Error {
    std::string reason;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::move(error)) {}       // NOLINT(google-explicit-constructor)

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const std::string& error() const { return std::get<1>(v_).reason; }

private:
    std::variant<T, Error> v_;
};

// For operations that only succeed or fail with a reason.
using Status = std::optional<Error>;  // std::nullopt = success

}  // namespace hubgate
