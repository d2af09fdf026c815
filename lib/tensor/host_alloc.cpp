// The host block cache: exact-size reuse of large blocks, bounded, thread-safe.
#include "lib/tensor/host_alloc.h"

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "dyad/device.h"
#include "dyad/error.h"

namespace dyad {
namespace detail {
namespace {

constexpr size_t kMinCached = size_t(256) << 10;  // smaller blocks are malloc's business

size_t rounded_size(size_t n) { return n == 0 ? 64 : (n + 63) / 64 * 64; }

struct Cache {
    std::mutex mu;
    std::multimap<size_t, void*> free_blocks;  // rounded size -> block
    size_t cached = 0;
    size_t limit = size_t(1) << 30;
    size_t hits = 0, misses = 0;

    void release_all() {  // caller holds mu
        for (auto& [size, p] : free_blocks) std::free(p);
        free_blocks.clear();
        cached = 0;
    }
};

// Never destroyed: tensors held in static objects may be freed after main returns.
Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

}  // namespace

void* host_alloc(size_t nbytes) {
    // More than the machine's memory can never succeed; say so instead of asking the allocator.
    static const double physical = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
    DYAD_CHECK(physical <= 0 || double(nbytes) <= physical, "out of host memory allocating ", nbytes,
               " bytes: the machine has ", int64_t(physical), " bytes in all");
    const size_t size = rounded_size(nbytes);
    Cache& c = cache();
    if (size >= kMinCached) {
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.free_blocks.find(size);
        if (it != c.free_blocks.end()) {
            void* p = it->second;
            c.free_blocks.erase(it);
            c.cached -= size;
            c.hits++;
            return p;
        }
        c.misses++;
    }
    void* p = std::aligned_alloc(64, size);
    if (p == nullptr && size >= kMinCached) {
        // Cached blocks of other sizes may be what the system is missing: give them back and retry.
        {
            std::lock_guard<std::mutex> lock(c.mu);
            c.release_all();
        }
        p = std::aligned_alloc(64, size);
    }
    DYAD_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
    return p;
}

void host_free(void* ptr, size_t nbytes) {
    if (ptr == nullptr) return;
    const size_t size = rounded_size(nbytes);
    if (size >= kMinCached) {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mu);
        if (c.cached + size <= c.limit) {
            c.free_blocks.emplace(size, ptr);
            c.cached += size;
            return;
        }
    }
    std::free(ptr);
}

}  // namespace detail

HostCacheStats host_cache_stats() {
    detail::Cache& c = detail::cache();
    std::lock_guard<std::mutex> lock(c.mu);
    HostCacheStats s;
    s.cached_bytes = c.cached;
    s.hits = c.hits;
    s.misses = c.misses;
    return s;
}

void empty_host_cache() {
    detail::Cache& c = detail::cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.release_all();
}

void set_host_cache_limit(size_t bytes) {
    detail::Cache& c = detail::cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = bytes;
    if (c.cached > bytes) c.release_all();
}

}  // namespace dyad
