// 2-D convolution kernels, NCHW, cross-correlation (no kernel flip), dilation 1, groups 1.
// x (n, c, h, w), weight (k, c, r, s), y (n, k, p, q); all contiguous. *_bwd kernels ACCUMULATE.
#pragma once
#include <cstdint>

namespace dyad {

struct Conv2dShape {
    int64_t n = 0, c = 0, h = 0, w = 0;  // input
    int64_t k = 0, r = 0, s = 0;         // filters: count, height, width
    int64_t p = 0, q = 0;                // output height, width
    int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

namespace naive {
// y = conv(x, weight) + bias; bias may be null. Accumulates each output in T.
template <typename T>
void conv2d_fwd(const Conv2dShape& s, T* y, const T* x, const T* weight, const T* bias);
// dx += conv_transpose(dy, weight).
template <typename T>
void conv2d_bwd_data(const Conv2dShape& s, T* dx, const T* dy, const T* weight);
// dweight += sum over (n, p, q) of dy * x window; dbias += sum over (n, p, q) of dy. dbias may be null.
template <typename T>
void conv2d_bwd_filter(const Conv2dShape& s, T* dweight, T* dbias, const T* dy, const T* x);
}  // namespace naive

namespace omp {
// Same contracts, float; differ from naive by summation order only.
void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias);
void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight);
void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x);
}  // namespace omp

}  // namespace dyad
