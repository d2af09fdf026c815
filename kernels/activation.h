// Activation kernels. Contiguous, n elements. *_bwd kernels ACCUMULATE into dx (dx += ...).
#pragma once
#include <cstdint>

namespace dyad {

namespace naive {
// y = max(x, 0); NaN stays NaN.
template <typename T>
void relu_fwd(T* y, const T* x, int64_t n);
// dx += dy where x > 0 (the gradient at exactly 0 is 0).
template <typename T>
void relu_bwd(T* dx, const T* dy, const T* x, int64_t n);
}  // namespace naive

namespace omp {
void relu_fwd(float* y, const float* x, int64_t n);
void relu_bwd(float* dx, const float* dy, const float* x, int64_t n);
}  // namespace omp

namespace cuda {
// Same contracts, float, device pointers, on the current dyad stream; equal naive bit for bit.
void relu_fwd(float* y, const float* x, int64_t n);
void relu_bwd(float* dx, const float* dy, const float* x, int64_t n);
}  // namespace cuda

}  // namespace dyad
