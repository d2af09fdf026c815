// Host memory for tensor storage: 64-byte aligned blocks, with a cache of large freed blocks keyed by
// size (see host_cache_stats in include/dyad/device.h).
#pragma once
#include <cstddef>

namespace dyad::detail {

// nbytes rounded up to a multiple of 64 (at least 64); throws dyad::Error when memory is exhausted.
void* host_alloc(size_t nbytes);
// Frees (or caches) a block from host_alloc; nbytes as given to host_alloc.
void host_free(void* ptr, size_t nbytes);

}  // namespace dyad::detail
