// Softmax, log-softmax and fused cross-entropy kernels. Softmax runs along the middle dim of a contiguous
// x viewed as (outer, reduce, inner) (see ReduceShape). *_bwd kernels ACCUMULATE into dx.
#pragma once
#include <cstdint>

#include "shapes.h"

namespace dyad {

namespace naive {
// y = exp(x - max) / sum exp(x - max) along the reduced dim.
template <typename T>
void softmax_fwd(const ReduceShape& s, T* y, const T* x);
// dx += y * (dy - sum(dy * y)).
template <typename T>
void softmax_bwd(const ReduceShape& s, T* dx, const T* dy, const T* y);
// y = x - max - log(sum exp(x - max)).
template <typename T>
void log_softmax_fwd(const ReduceShape& s, T* y, const T* x);
// dx += dy - exp(y) * sum(dy).
template <typename T>
void log_softmax_bwd(const ReduceShape& s, T* dx, const T* dy, const T* y);

// logits (n, c), labels (n) in [0, c) (checked by the caller), L = int32_t or int64_t. loss[0] = mean over
// rows of lse - (1 - eps) * x[label] - eps / c * sum_c x, with lse = log-sum-exp of the row; lse (n) is
// saved for backward. eps = label smoothing.
template <typename T, typename L>
void cross_entropy_fwd(int64_t n, int64_t c, T* loss, T* lse, const T* logits, const L* labels, T eps);
// dlogits += dloss[0] / n * (softmax(x) - q), q = (1 - eps) * onehot(label) + eps / c.
template <typename T, typename L>
void cross_entropy_bwd(int64_t n, int64_t c, T* dlogits, const T* dloss, const T* logits, const T* lse, const L* labels,
                       T eps);
}  // namespace naive

namespace omp {
void softmax_fwd(const ReduceShape& s, float* y, const float* x);
void softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y);
void log_softmax_fwd(const ReduceShape& s, float* y, const float* x);
void log_softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y);
void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int32_t* labels,
                       float eps);
void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int64_t* labels,
                       float eps);
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int32_t* labels, float eps);
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int64_t* labels, float eps);
}  // namespace omp

namespace cuda {
// Same contracts, float. One block per row, warp-shuffle reductions. cross_entropy_fwd checks the labels
// on the GPU: a label outside [0, c) records a fault (runtime.h) that the next synchronisation throws.
void softmax_fwd(const ReduceShape& s, float* y, const float* x);
void softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y);
void log_softmax_fwd(const ReduceShape& s, float* y, const float* x);
void log_softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y);
void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int32_t* labels,
                       float eps);
void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int64_t* labels,
                       float eps);
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int32_t* labels, float eps);
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int64_t* labels, float eps);
}  // namespace cuda

}  // namespace dyad
