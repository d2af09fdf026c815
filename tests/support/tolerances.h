// The tolerance table: how far a kernel set may be from the naive reference, for every kind of result,
// in one place. A row is a function of the set under test (a column per set where they differ) and of
// the length of the sums behind each result. docs/testing.md gives the reasoning for each row; a failing
// comparison is debugged, never answered by a wider number here.
//
// The comparison is |actual - expected| <= atol + rtol * |expected| element by element (AllClose), or
// identical bits when a row says exact (require_close does either).
#pragma once
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "support/compare.h"
#include "support/kernel_sets.h"

namespace dyad::test {

struct Tolerance {
    double rtol = 0, atol = 0;
    // Exact values, but a NaN may carry another payload and a zero another sign (the GPU's arithmetic
    // gives its canonical NaN, not an input's payload).
    bool values_only = false;
    bool exact() const { return rtol == 0 && atol == 0 && !values_only; }
};

namespace tol {

// Each element by the same float expression as naive, or an element selected or copied: elementwise
// arithmetic, relu, comparisons, where, max pooling and its positions, masks, copies, gathers, every
// *_bwd that adds the same terms in the same order. Identical bits on every set (signed zeros and NaN
// payloads included); a set that cannot promise this gets its own row, not a tolerance here.
inline Tolerance exact(const KernelSet&) { return {}; }

// One float operation per element whose result may be NaN (a backward adding dy to dx): the same value
// everywhere; a NaN on the GPU is its canonical NaN, not the payload of the operand that made it.
inline Tolerance arith(const KernelSet& ks) { return {0, 0, ks.is_cuda()}; }

// exp, log, pow, sigmoid, tanh: each set calls its own math library (glibc on the CPU, a vectorised exp
// within 2 ulp in omp, CUDA's exp/log/tanhf within 2 ulp): 1e-6 relative covers a few ulp of float.
inline Tolerance libm(const KernelSet&) { return {1e-6, 0}; }

// A sum of `terms` values of order 1 (sum, mean, a backward that reduces over broadcast dims, dgamma,
// dbeta, a bias gradient): naive adds in double, omp in float lanes, cuda in a float or double tree. The
// rounding error of float partial sums is a random walk: about eps * sqrt(terms) of the magnitude.
inline Tolerance sum(const KernelSet& ks, double terms) {
    const double walk = 1e-6 * std::sqrt(std::max(terms, 1.0));
    return {1e-5, ks.is_cuda() ? std::max(1e-5, walk) : walk};
}

// A dot product of length k with O(1) partial sums (GEMM, linear, convolution with operands scaled by
// 1 / sqrt(k)): only the summation order differs (blocking, FMA; strict FP32 in cuBLAS and cuDNN, never
// TF32 in these checks), so the sum rule with rtol 1e-5.
inline Tolerance dot(const KernelSet&, int64_t k) { return {1e-5, 1e-6 * std::sqrt(double(std::max<int64_t>(k, 1)))}; }

// softmax, log_softmax, cross-entropy (per-row exp and sum): the vectorised exp and float row sums.
// Losses averaged over n rows compare their gradient with atol / n.
inline Tolerance softmax(const KernelSet& ks) { return {1e-5, ks.is_cuda() ? 1e-5 : 1e-6}; }

// Average pooling's forward: windows of a few to a few dozen values, summed in float against double.
inline Tolerance avg_pool(const KernelSet&) { return {1e-6, 1e-6}; }

// Batch-norm statistics against the float64 reference (tested with a mean offset of 50, so a one-pass
// variance would fail): the per-channel sums in double in every set, in another order.
inline Tolerance bn_mean(const KernelSet&) { return {1e-6, 1e-6}; }
inline Tolerance bn_invstd(const KernelSet&) { return {1e-5, 0}; }
inline Tolerance bn_running(const KernelSet&) { return {1e-5, 1e-6}; }
inline Tolerance bn_output(const KernelSet&) { return {1e-5, 1e-5}; }

// ---- gemm, linear, conv
// The dot rule for sums whose partial sums are of order `magnitude` instead of 1 (the atol grows with
// it): a gradient of linear whose terms are known to be larger, e.g. dx = dy W with an unscaled W.
inline Tolerance dot_scaled(const KernelSet& ks, int64_t k, double magnitude) {
    Tolerance t = dot(ks, k);
    t.atol *= magnitude;
    return t;
}

// A convolution (forward, backward data, backward filter, bias gradient) against naive, on operands
// scaled for O(1) results, `len` terms per result. omp: im2col and the blocked GEMM, only the summation
// order differs: the dot rule. cuda: cuDNN (strict FP32, never TF32 here) may pick Winograd or FFT
// algorithms, whose transforms round on their own: 1e-4 relative and absolute. (CUDA's im2col
// convolution is a GEMM in strict FP32 and follows the dot rule: tests/cuda/test_conv.cpp.)
// omp with Winograd (winograd_m, the tile size the kernels chose; 0 for im2col): F(2x2, 3x3) follows the
// dot rule (measured within 2.5e-6 on the models' shapes); F(4x4, 3x3)'s transforms scale values by up
// to 8 and 1/24 and round on their own, like cuDNN's: 1e-4 relative and absolute (measured at most 4.9e-5
// on the baseline's and the ResNet's shapes, tests/kernels/test_conv.cpp; docs/testing.md).
inline Tolerance conv(const KernelSet& ks, int64_t len, int winograd_m = 0) {
    return ks.is_cuda() || winograd_m == 4 ? Tolerance{1e-4, 1e-4} : dot(ks, len);
}

// A few float roundings of values of order 1, against the same values summed in double. The accumulate
// contract of every *_bwd kernel: dx after the kernel against dx before plus the gradient into zeros (one
// float addition per element for conv, softmax and cross-entropy; one per window over the element for
// pooling; max_bwd then sum_bwd adds two); and the bias gradient of a convolution with no input channels
// (a dozen terms summed in float).
inline Tolerance few_ulp(const KernelSet&) { return {1e-6, 1e-6}; }

// The same values, a zero of either sign: results that are copies or exact small integers (a GEMM with
// k = 0, a convolution with no input channels writing its bias), whose zeros may come from another
// expression on each set.
inline Tolerance same_values(const KernelSet&) { return {0, 0, true}; }
// ---- elementwise
// exp, log, pow, sigmoid and tanh as elementwise ops (the forward, and any result built from it): omp
// calls the same scalar libm function per element as naive (glibc, no vectorised exp here): exact. cuda
// calls expf, logf, powf, tanhf, within 2 ulp (powf 4) where glibc is within 1: rtol 1e-6, 8 float ulp.
inline Tolerance ew_libm(const KernelSet& ks) { return ks.is_cuda() ? Tolerance{1e-6, 0} : Tolerance{}; }

// A gradient dx (+)= dy * f'(x) whose f' the set computes with libm or from its own libm forward y
// (sigmoid's y (1 - y), tanh's 1 - y^2, pow's p x^(p - 1)); `bound` is the largest |dy * f'(x)| (|dy| where
// |f'| <= 1). omp: exact (the same y and libm as naive). cuda: a few ulp of f', relative to the term and
// not to the result (1 - y cancels where y is near 1, and dx + term may be near 0): rtol 1e-6 and an atol
// of 1e-6 * bound.
inline Tolerance ew_libm_grad(const KernelSet& ks, double bound) {
    return ks.is_cuda() ? Tolerance{1e-6, 1e-6 * bound} : Tolerance{};
}

// The gradient of a binary op's operand through autograd, summed over `terms` elements of the output (1:
// an operand of the output's shape), `scale` the largest |gradient| (at least 1; pow's reach 1e6). omp:
// exact without a sum (naive's expression per element, the same libm), else the sum row's random walk,
// scaled by the size of the terms (naive adds in double, omp in float). cuda: rtol 1e-5 and an atol of
// max(1e-5, 1e-6 sqrt(terms)) * scale also without a sum, since powf and logf make pow's terms differ.
inline Tolerance ew_grad_sum(const KernelSet& ks, double terms, double scale) {
    const double walk = 1e-6 * std::sqrt(std::max(terms, 1.0));
    if (ks.is_cuda()) return {1e-5, std::max(1e-5, walk) * scale};
    return terms <= 1 ? Tolerance{} : Tolerance{1e-5, walk * scale};
}

// where's gradient: dy selected (exact) and, for a broadcast operand, summed over `terms` elements of
// order 1. omp: exact without a sum, else the sum row. cuda: the binary ops' rule above (`scale`: the
// largest |gradient|), which its tests have always used for where too.
inline Tolerance where_grad(const KernelSet& ks, double terms, double scale) {
    if (ks.is_cuda()) return ew_grad_sum(ks, terms, scale);
    return terms <= 1 ? Tolerance{} : sum(ks, terms);
}

// ---- index
// gather_bwd into zeros, its per-target float sums added up in double, against the double sum of every
// dy: the float rounding of each per-target sum (up to 77k unit-normal terms in all, each sum rounded to
// 2^-24 of its size), a random walk far below 1e-3.
inline Tolerance gather_bwd_total(const KernelSet&) { return {0, 1e-3}; }
// ---- loss
// A softmax or log_softmax gradient against naive's gradient directly (not against the gradient the set's
// own forward output implies): the backward multiplies the forward's rounding (the softmax row above) by
// a row sum of dy, up to about 14 for rows of 200.
inline Tolerance softmax_grad(const KernelSet&) { return {1e-5, 1e-5}; }
// A cross-entropy loss (a mean over rows of log-sum-exp terms of order 1 to 10) against naive's: relative.
inline Tolerance cross_entropy_loss(const KernelSet& ks) { return {softmax(ks).rtol, 0}; }
// A cross-entropy gradient dloss / n * (p - q): the softmax row, with its absolute error divided by n.
inline Tolerance cross_entropy_grad(const KernelSet& ks, int64_t n) {
    return {softmax(ks).rtol, softmax(ks).atol / double(std::max<int64_t>(n, 1))};
}

// ---- norm
// dgamma and dbeta against the float64 reference: sums over the n * hw values of a channel, in double or
// in float lanes flushed into double every 64 terms (omp): the sum row's random walk, in every set.
inline Tolerance bn_param_grad(const KernelSet&, int64_t count) {
    return {1e-5, 1e-6 * std::sqrt(double(std::max<int64_t>(count, 1)))};
}
// dgamma and dbeta of the batch_norm2d frontend against naive's float32 run: both carry the float
// rounding of their saved statistics and of dx, and the sums run over 135 values of up to a few units.
inline Tolerance bn_frontend_param_grad(const KernelSet&) { return {1e-5, 1e-4}; }
// ---- pool
// Average pooling's forward (avg_pool2d, adaptive_avg_pool2d) against naive in float32. naive and cuda add
// the window in double in the same order and round once (cuda with __dadd_rn), so cuda gives naive's
// bits; omp adds in float (windows of at most a few dozen values), within the avg_pool row.
inline Tolerance pool_avg_fwd(const KernelSet& ks) { return ks.is_cuda() ? exact(ks) : avg_pool(ks); }
// ---- optim
// clip_grad_norm_'s total norm: every set accumulates the squares (or the maximum) in double, in its own
// order (naive in one running sum, omp per fixed piece in vector lanes, cuda in a tree per block with the
// blocks added in a fixed order), and rounds to float once: the totals are at most an ulp or so apart.
inline Tolerance grad_norm(const KernelSet&) { return {1e-6, 0}; }
// The gradients clip_grad_norm_ scaled: each times min(1, max_norm / (total + 1e-6)) computed in float from
// the set's own total, so an ulp in the total gives an ulp or two in the scale and the products.
inline Tolerance grad_clip(const KernelSet&) { return {2e-6, 0}; }

}  // namespace tol

// expected vs actual under t: identical bits when t is exact, else all-close.
inline void require_close(const std::vector<float>& expected, const std::vector<float>& actual, Tolerance t) {
    if (t.exact()) {
        REQUIRE(actual.size() == expected.size());
        if (same_bits(expected, actual)) return;
        REQUIRE_THAT(std::vector<double>(actual.begin(), actual.end()),
                     AllClose(std::vector<double>(expected.begin(), expected.end())));
        FAIL("the bytes differ: the sign of a zero or a NaN payload");
    } else {
        REQUIRE_THAT(std::vector<double>(actual.begin(), actual.end()),
                     AllClose(std::vector<double>(expected.begin(), expected.end())).rtol(t.rtol).atol(t.atol));
    }
}

inline void require_close(const std::vector<double>& expected, const std::vector<double>& actual, Tolerance t) {
    REQUIRE_THAT(actual, AllClose(expected).rtol(t.rtol).atol(t.atol));
}

// Tensors (any device, layout and dtype): shape, dtype and values (bits when exact).
inline void require_close(const Tensor& expected, const Tensor& actual, Tolerance t) {
    REQUIRE(actual.shape() == expected.shape());
    REQUIRE(actual.dtype() == expected.dtype());
    if (t.exact()) {
        require_identical(expected.detach().to(Device::cpu()), actual.detach().to(Device::cpu()));
    } else {
        REQUIRE_THAT(values(actual), AllClose(values(expected)).rtol(t.rtol).atol(t.atol));
    }
}

}  // namespace dyad::test
