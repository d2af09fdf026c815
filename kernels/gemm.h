// GEMM kernels: C = alpha * op(A) * op(B) + beta * C, row-major, batched (see GemmShape).
// beta == 0 means C is written without being read (NaN in C does not propagate).
#pragma once
#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

namespace naive {
// The triple loop, accumulating each dot product in T. a, b, c: as for omp::gemm below.
template <typename T>
void gemm(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void gemm(const GemmShape& s, float alpha, const bfloat16* a, const bfloat16* b, float beta, bfloat16* c);
}  // namespace naive

namespace omp {
// Blocked GEMM: packed panels of A and B, a register-blocked micro-kernel (AVX-512 when the CPU has it,
// AVX2+FMA otherwise, portable C++ as the fallback), OpenMP threads over tiles of C (one thread below
// about 64^3 multiply-adds). Differs from naive by summation order only.
// a: per batch (m, k), or (k, m) when trans_a; b: (k, n), or (n, k) when trans_b; c: (m, n).
void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
// Which micro-kernel gemm() uses on this CPU: "avx512", "avx2" or "portable". Chosen once per process;
// the environment variable DYAD_GEMM_ISA=avx2 or =portable selects a lower one (for tests and comparisons).
const char* gemm_isa();
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void gemm(const GemmShape& s, float alpha, const bfloat16* a, const bfloat16* b, float beta, bfloat16* c);
}  // namespace omp

namespace cuda {
// Same contract, float, device pointers. gemm() runs cuBLAS or the tiled kernel as gemm_kernel() says;
// the two are also callable directly (tests, benchmarks). cuBLAS math follows math(): CUBLAS_COMPUTE_32F
// (strict FP32, no TF32) by default.
void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
void gemm_cublas(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
// Shared-memory tiles, register blocking, 16-byte loads where the layout allows; strict FP32.
void gemm_tiled(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
// bfloat16 overload: cublasGemmStridedBatchedEx with bfloat16 A, B and C and CUBLAS_COMPUTE_32F (float accumulation,
// C rounded once), whatever math() says.
void gemm(const GemmShape& s, float alpha, const bfloat16* a, const bfloat16* b, float beta, bfloat16* c);
}  // namespace cuda

}  // namespace dyad
