// 2-D pooling kernels. x (n, c, h, w), y (n, c, p, q), dense NCHW (row-major) or, with channels_last,
// NHWC (x (n, h, w, c), y (n, p, q, c), as their gradients and the max pools' positions). *_bwd kernels
// ACCUMULATE.
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

// Window (i, j) of a fixed-window pool covers input rows [i*stride_h - pad_h, + kh) and columns likewise,
// clipped to the input. For the adaptive pool kh/kw/stride/pad are unused: row window i is
// [floor(i*h/p), ceil((i+1)*h/p)).
struct Pool2dShape {
    int64_t n = 0, c = 0, h = 0, w = 0;
    int64_t p = 0, q = 0;
    int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
    bool channels_last = false;  // NHWC operands

    // Element offsets of x at (image n, channel c, position i = row * w + column of the h x w plane) and of
    // y at (n, c, o = row * q + column of the p x q plane) in the layout in use.
    DYAD_HOST_DEVICE int64_t x_at(int64_t n_, int64_t c_, int64_t i) const {
        return channels_last ? (n_ * h * w + i) * c + c_ : (n_ * c + c_) * h * w + i;
    }
    DYAD_HOST_DEVICE int64_t y_at(int64_t n_, int64_t c_, int64_t o) const {
        return channels_last ? (n_ * p * q + o) * c + c_ : (n_ * c + c_) * p * q + o;
    }
};

namespace naive {
// y = window maximum; idx (y's layout) = its position h_in * w + w_in within the input plane (first maximum in
// row-major window order; NaN wins). Every window holds at least one input element (pad <= k/2). idx may be
// null (no backward will run): only y is written. The same holds for relu_max_pool2d_fwd, in every set.
template <typename T>
void max_pool2d_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x);
// dx[plane][idx] += dy.
template <typename T>
void max_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx);
// Fused relu + max pool: y and idx are exactly max_pool2d_fwd's on relu(x) (relu as relu_fwd: x < 0 ? 0 : x,
// so NaN and -0.0 pass unchanged), computed in one pass with the relu applied to each element as it is
// read. Where y > 0, idx is also the position of max_pool2d_fwd's maximum of x itself.
template <typename T>
void relu_max_pool2d_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x);
// dx[plane][idx] += dy where y > 0 (a 0 or NaN output passes no gradient): max_pool2d_bwd's routing with
// relu_bwd's x > 0 gate, since y > 0 exactly where the chosen x is > 0.
template <typename T>
void relu_max_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx, const T* y);
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
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx);
void relu_max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void relu_max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx, const bfloat16* y);
void avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
}  // namespace naive

namespace omp {
void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx);
void relu_max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void relu_max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y);
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx);
void relu_max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void relu_max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx, const bfloat16* y);
void avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
}  // namespace omp

namespace cuda {
// Same contracts, float; same tie and NaN rules as naive. Backward kernels gather (one thread per input
// element) instead of scattering, so they need no atomics and are deterministic.
void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx);
void relu_max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x);
void relu_max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y);
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx);
void relu_max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x);
void relu_max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx, const bfloat16* y);
void avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x);
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy);
}  // namespace cuda

}  // namespace dyad
