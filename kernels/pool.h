// 2-D pooling kernels, NCHW, contiguous. x (n, c, h, w), y (n, c, p, q). *_bwd kernels ACCUMULATE.
#pragma once
#include <cstdint>

namespace dyad {

// Window (i, j) of a fixed-window pool covers input rows [i*stride_h - pad_h, + kh) and columns likewise,
// clipped to the input. For the adaptive pool kh/kw/stride/pad are unused: row window i is
// [floor(i*h/p), ceil((i+1)*h/p)).
struct Pool2dShape {
    int64_t n = 0, c = 0, h = 0, w = 0;
    int64_t p = 0, q = 0;
    int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

namespace naive {
// y = window maximum; idx = its position h_in * w + w_in within the input plane (first maximum in
// row-major window order; NaN wins). Every window holds at least one input element (pad <= k/2).
template <typename T>
void max_pool2d_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x);
// dx[plane][idx] += dy.
template <typename T>
void max_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx);
// y = window sum / (kh * kw) (padding counts as zeros).
template <typename T>
void avg_pool2d_fwd(const Pool2dShape& s, T* y, const T* x);
template <typename T>
void avg_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy);
// y = mean over the adaptive window.
template <typename T>
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, T* y, const T* x);
template <typename T>
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy);
}  // namespace naive

namespace omp {
void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx);
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
}  // namespace omp

namespace cuda {
// Same contracts, float; same tie and NaN rules as naive. Backward kernels gather (one thread per input
// element) instead of scattering, so they need no atomics and are deterministic.
void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx);
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
}  // namespace cuda

}  // namespace dyad
