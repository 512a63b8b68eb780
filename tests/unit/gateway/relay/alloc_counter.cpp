#include "tests/unit/gateway/relay/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

// Kept in its own translation unit: inlined into callers, GCC 12 takes the free() here for a
// mismatch with the operator new it can see (-Wmismatched-new-delete).
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

namespace hubgate::test {
std::size_t allocation_count() noexcept { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace hubgate::test

void* operator new(std::size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
