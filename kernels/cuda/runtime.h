// CUDA runtime skeleton: device discovery, memory and copies. No CUDA types in this header, so host code
// built without nvcc can include it. All calls run on the current dyad stream (the default stream for
// now); every status is checked and failures throw dyad::CudaError.
#pragma once
#include <cstddef>
#include <string>

namespace dyad::cuda {

// Number of usable GPUs; 0 when the driver or a GPU is missing. Never throws.
int device_count() noexcept;
std::string device_name(int index);
std::string runtime_version();  // "13.0"

void* malloc_device(size_t nbytes, int device);
void free_device(void* ptr, int device) noexcept;  // logs instead of throwing (used by destructors)
void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device);
void memset_zero(void* dst, size_t nbytes, int device);
void synchronize(int device);

}  // namespace dyad::cuda
