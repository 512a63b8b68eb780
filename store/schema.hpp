// The store database's schema as an ordered list of forward migration steps (PRAGMA user_version =
// number of steps applied). Store::open migrates; adding the C2D inbox later = appending one step.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

struct sqlite3;

namespace hubgate::store::schema {

// steps()[i] takes a database from user_version i to i + 1. Append only; never edit a shipped step.
std::span<const std::string_view> steps() noexcept;

// Brings `db` to steps.size(): sets auto_vacuum=INCREMENTAL on a database without tables, then
// applies the missing steps and the new user_version in one transaction (all or nothing). Refuses a
// database newer than `steps`, or one with tables but no user_version (not a hubgate store).
// `path` is only used in messages. Returns the version found before migrating.
Result<int> migrate(sqlite3* db, std::span<const std::string_view> steps, const std::string& path);

}  // namespace hubgate::store::schema
