// Reads back everything a (stopped or killed) gateway left in its store, for assertions on what
// was made durable.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/model/hub_message.hpp"

namespace hubgate::test {

// Every outbox message, oldest first. Fails the current test if the store cannot be opened.
std::vector<HubMessage> stored_messages(const std::string& db_path);

// How many times each message id occurs (at-least-once checks: every acknowledged id, none twice).
std::map<std::string, int> count_by_message_id(const std::vector<HubMessage>& messages);
// The first message with this id, or nullptr.
const HubMessage* find_by_message_id(const std::vector<HubMessage>& messages, std::string_view message_id);

// Every field of a message on one line (body as hex), so a failed comparison shows what differs.
std::string describe(const HubMessage& m);

}  // namespace hubgate::test

template <>
struct doctest::StringMaker<hubgate::HubMessage> {
    static doctest::String convert(const hubgate::HubMessage& m) { return hubgate::test::describe(m).c_str(); }
};
