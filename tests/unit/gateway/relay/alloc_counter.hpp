// Counts heap allocations in the relay format tests, so the hot-path rule ("no per-element heap
// allocation") can be checked. The replacement operator new/delete live in alloc_counter.cpp.
#pragma once

#include <cstddef>

namespace hubgate::test {

// Number of calls to the global operator new since the program started.
std::size_t allocation_count() noexcept;

}  // namespace hubgate::test
