// Activation kernels. Contiguous, n elements. *_bwd kernels ACCUMULATE into dx (dx += ...).
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"

namespace dyad {

namespace naive {
// y = max(x, 0); NaN stays NaN.
template <typename T>
void relu_fwd(T* y, const T* x, int64_t n);
// dx += dy where x > 0 (the gradient at exactly 0 is 0).
template <typename T>
void relu_bwd(T* dx, const T* dy, const T* x, int64_t n);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void relu_fwd(bfloat16* y, const bfloat16* x, int64_t n);
void relu_bwd(bfloat16* dx, const bfloat16* dy, const bfloat16* x, int64_t n);
}  // namespace naive

namespace omp {
void relu_fwd(float* y, const float* x, int64_t n);
void relu_bwd(float* dx, const float* dy, const float* x, int64_t n);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void relu_fwd(bfloat16* y, const bfloat16* x, int64_t n);
void relu_bwd(bfloat16* dx, const bfloat16* dy, const bfloat16* x, int64_t n);
}  // namespace omp

namespace cuda {
// Same contracts, float, device pointers, on the current dyad stream; equal naive bit for bit.
void relu_fwd(float* y, const float* x, int64_t n);
void relu_bwd(float* dx, const float* dy, const float* x, int64_t n);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void relu_fwd(bfloat16* y, const bfloat16* x, int64_t n);
void relu_bwd(bfloat16* dx, const bfloat16* dy, const bfloat16* x, int64_t n);
}  // namespace cuda

}  // namespace dyad
