#include "gateway/model/message_id.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace hubgate {

// random_generator_mt19937 seeds its engine from the OS once, at construction; each id after that is
// pure computation, which matters at thousands of messages per second.
struct MessageIdGenerator::Impl {
    boost::uuids::random_generator_mt19937 gen;
};

MessageIdGenerator::MessageIdGenerator() : impl_(std::make_unique<Impl>()) {}
MessageIdGenerator::~MessageIdGenerator() = default;

std::string MessageIdGenerator::next() {
    return boost::uuids::to_string(impl_->gen());  // lowercase 8-4-4-4-12
}

}  // namespace hubgate
