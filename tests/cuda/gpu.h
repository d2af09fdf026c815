// Helpers for the CUDA tests: moving tensors, running the same code on the naive CPU kernels and on the
// GPU, and the tolerances for comparing the two (reasons in docs/testing.md).
#pragma once
#include "support/catch.h"

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/kernel_sets.h"  // naive_reference

namespace dyad::test {

inline Tensor gpu(const Tensor& t) { return t.to(Device::cuda()); }
inline Tensor cpu(const Tensor& t) { return t.to(Device::cpu()); }

// Elementwise ops, relu, pooling, dropout, copies: the GPU computes each element with the same float
// expression as naive, so the results are identical (compare with require_identical).
// Reductions and anything with a sum over many terms (softmax, batch norm, losses): the GPU sums in a
// tree, naive in a line, so they differ by rounding: rtol 1e-5 relative to the magnitude, plus an atol
// that scales with sqrt(terms) * eps * max|x| (see docs/testing.md); these constants cover the case lists.
constexpr double kReduceRtol = 1e-5, kReduceAtol = 1e-5;
// GEMM and convolution: cuBLAS/cuDNN in strict FP32 (FMA, no TF32) also differ by summation order only;
// with k up to a few thousand terms of unit-normal products the error stays below 1e-4 relative.
constexpr double kGemmRtol = 1e-4, kGemmAtol = 1e-4;

}  // namespace dyad::test
