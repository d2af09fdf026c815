// 2-D convolution kernels, cross-correlation (no kernel flip), dilation 1, groups 1. x (n, c, h, w),
// weight (k, c, r, s), y (n, k, p, q), each dense in one of two layouts: NCHW (row-major, the default) or,
// with channels_last, NHWC (x (n, h, w, c), weight (k, r, s, c), y (n, p, q, k), as their gradients; the
// bias is (k) either way). *_bwd kernels ACCUMULATE.
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

struct Conv2dShape {
    int64_t n = 0, c = 0, h = 0, w = 0;  // input
    int64_t k = 0, r = 0, s = 0;         // filters: count, height, width
    int64_t p = 0, q = 0;                // output height, width
    int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
    bool channels_last = false;  // NHWC operands (see above)

    // Element offsets of x[n][c][ih][iw], y[n][k][p][q] and weight[k][c][r][t] in the layout in use.
    DYAD_HOST_DEVICE int64_t x_at(int64_t n_, int64_t c_, int64_t ih, int64_t iw) const {
        return channels_last ? ((n_ * h + ih) * w + iw) * c + c_ : ((n_ * c + c_) * h + ih) * w + iw;
    }
    DYAD_HOST_DEVICE int64_t y_at(int64_t n_, int64_t k_, int64_t p_, int64_t q_) const {
        return channels_last ? ((n_ * p + p_) * q + q_) * k + k_ : ((n_ * k + k_) * p + p_) * q + q_;
    }
    DYAD_HOST_DEVICE int64_t w_at(int64_t k_, int64_t c_, int64_t r_, int64_t t_) const {
        return channels_last ? ((k_ * r + r_) * s + t_) * c + c_ : ((k_ * c + c_) * r + r_) * s + t_;
    }
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
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void conv2d_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight, const bfloat16* bias);
void conv2d_bwd_data(const Conv2dShape& s, bfloat16* dx, const bfloat16* dy, const bfloat16* weight);
void conv2d_bwd_filter(const Conv2dShape& s, bfloat16* dweight, bfloat16* dbias, const bfloat16* dy, const bfloat16* x);
}  // namespace naive

namespace omp {
// Same contracts, float; differ from naive by summation order only.
void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias);
void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight);
void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x);

// Which algorithm the three functions above use for the convolutions Winograd applies to: automatic (the
// default: F(4x4, 3x3) with at least 16 input and output channels and 4x4 outputs, else im2col), im2col
// + GEMM, or Winograd F(2x2, 3x3) or F(4x4, 3x3). Process-wide; other shapes always use im2col.
// channels_last shapes follow the same choice: where it is Winograd, its NCHW passes run on NCHW copies
// of the operands (transposed in, and the result transposed back; the batch in chunks of images beyond
// 64 MiB of copies), which gives the NCHW convolution's bits (backward filter's too while the batch fits
// one chunk); elsewhere NHWC im2col (one column row per output position, so y comes out of the GEMM in
// NHWC order).
enum class ConvAlgo { automatic, im2col, winograd_2x2, winograd_4x4 };
void set_conv_algo(ConvAlgo a);
ConvAlgo conv_algo();
// Winograd F(m x m, 3 x 3), m = 2 or 4 (kernels/omp/winograd.cpp): for 3x3 filters, stride 1 and padding
// 0-2 (winograd_applies), with the contracts above. Fewer multiplications than im2col, more rounding
// error (docs/testing.md gives the bound).
bool winograd_applies(const Conv2dShape& s);
// The Winograd tile size m that conv2d_fwd, _bwd_data and _bwd_filter use for s under the current
// algorithm, or 0 where they use im2col; the same for a channels_last shape as for its NCHW twin.
int winograd_tile(const Conv2dShape& s);
// dbias[k] += dy summed over (n, p, q), in double over rows summed in float lanes (in double for
// channels_last): Winograd's bias gradient.
void conv2d_bias_grad(const Conv2dShape& s, float* dbias, const float* dy);
void conv2d_fwd_winograd(int m, const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias);
void conv2d_bwd_data_winograd(int m, const Conv2dShape& s, float* dx, const float* dy, const float* weight);
void conv2d_bwd_filter_winograd(int m, const Conv2dShape& s, float* dweight, float* dbias, const float* dy,
                                const float* x);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void conv2d_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight, const bfloat16* bias);
void conv2d_bwd_data(const Conv2dShape& s, bfloat16* dx, const bfloat16* dy, const bfloat16* weight);
void conv2d_bwd_filter(const Conv2dShape& s, bfloat16* dweight, bfloat16* dbias, const bfloat16* dy, const bfloat16* x);
}  // namespace omp

namespace cuda {
// Same contracts, float. cuDNN by default (descriptors and the algorithm found once per shape and cached;
// strict FP32 unless the math setting says otherwise; deterministic algorithms only in deterministic
// mode); im2col + GEMM when conv_kernel() is ConvKernel::im2col.
void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias);
void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight);
void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x);
// y = relu(conv(x, weight) + bias) in one cuDNN call where cuDNN offers it (bias may be null).
void conv2d_bias_relu_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias);
// Unfolds x (c, h, w) of one image into col (c*r*s, p*q), zero outside the image; col2im adds col back
// into dx (c, h, w) (accumulates). The building blocks of the im2col convolution.
void im2col(const Conv2dShape& s, float* col, const float* x);
void col2im(const Conv2dShape& s, float* dx, const float* col);
// bfloat16 overloads: cuDNN with bfloat16 tensors and float accumulation (CUDNN_DATA_FLOAT compute); the bias
// (bfloat16, like the other operands) and ReLU are added by dyad's own kernels. A pass cuDNN has no
// bfloat16 algorithm for runs the float path on widened copies and rounds its results once.
void conv2d_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight, const bfloat16* bias);
void conv2d_bwd_data(const Conv2dShape& s, bfloat16* dx, const bfloat16* dy, const bfloat16* weight);
void conv2d_bwd_filter(const Conv2dShape& s, bfloat16* dweight, bfloat16* dbias, const bfloat16* dy, const bfloat16* x);
void conv2d_bias_relu_fwd(const Conv2dShape& s, bfloat16* y, const bfloat16* x, const bfloat16* weight,
                          const bfloat16* bias);
}  // namespace cuda

}  // namespace dyad
