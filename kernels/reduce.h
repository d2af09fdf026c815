// Reduction kernels over a contiguous x viewed as (outer, reduce, inner) (see ReduceShape); results are
// (outer, inner). *_bwd kernels ACCUMULATE into dx (dx += ...).
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

namespace naive {
// y[o, i] = scale * sum_r x[o, r, i]. Accumulates in double (the reference is the accurate one).
template <typename T>
void sum_fwd(T* y, const T* x, const ReduceShape& s, T scale);
// dx[o, r, i] += scale * dy[o, i].
template <typename T>
void sum_bwd(T* dx, const T* dy, const ReduceShape& s, T scale);
// y[o, i] = max_r x[o, r, i]; idx[o, i] = the first r attaining it. A NaN wins (the first NaN).
// y may be null (argmax). reduce must be >= 1.
template <typename T>
void max_fwd(T* y, int32_t* idx, const T* x, const ReduceShape& s);
// The same for the minimum: the first r attaining it; a NaN wins here too (the first NaN).
template <typename T>
void min_fwd(T* y, int32_t* idx, const T* x, const ReduceShape& s);
// dx[o, idx[o, i], i] += dy[o, i]: the backward of max and of min.
template <typename T>
void max_bwd(T* dx, const T* dy, const int32_t* idx, const ReduceShape& s);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void sum_fwd(bfloat16* y, const bfloat16* x, const ReduceShape& s, float scale);
void sum_bwd(bfloat16* dx, const bfloat16* dy, const ReduceShape& s, float scale);
}  // namespace naive

namespace omp {
// Same contracts, float. sum_fwd accumulates in float in several lanes (differs from naive by rounding
// only); max_fwd, min_fwd, sum_bwd and max_bwd equal naive exactly.
void sum_fwd(float* y, const float* x, const ReduceShape& s, float scale);
void sum_bwd(float* dx, const float* dy, const ReduceShape& s, float scale);
void max_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s);
void min_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s);
void max_bwd(float* dx, const float* dy, const int32_t* idx, const ReduceShape& s);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void sum_fwd(bfloat16* y, const bfloat16* x, const ReduceShape& s, float scale);
void sum_bwd(bfloat16* dx, const bfloat16* dy, const ReduceShape& s, float scale);
}  // namespace omp

namespace cuda {
// Same contracts, float. Warp-shuffle tree reductions (float accumulation, fixed order: deterministic).
void sum_fwd(float* y, const float* x, const ReduceShape& s, float scale);
void sum_bwd(float* dx, const float* dy, const ReduceShape& s, float scale);
void max_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s);
void min_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s);
void max_bwd(float* dx, const float* dy, const int32_t* idx, const ReduceShape& s);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void sum_fwd(bfloat16* y, const bfloat16* x, const ReduceShape& s, float scale);
void sum_bwd(bfloat16* dx, const bfloat16* dy, const ReduceShape& s, float scale);
}  // namespace cuda

}  // namespace dyad
