// Message ids for messages that arrive without one. One generator per thread (not thread-safe):
// Boost.UUID's random_generator_mt19937, seeded once, so no syscall per id.
#pragma once

#include <memory>
#include <string>

namespace hubgate {

class MessageIdGenerator {
public:
    MessageIdGenerator();
    ~MessageIdGenerator();
    MessageIdGenerator(const MessageIdGenerator&) = delete;
    MessageIdGenerator& operator=(const MessageIdGenerator&) = delete;

    std::string next();  // lowercase 8-4-4-4-12 UUID text

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate
