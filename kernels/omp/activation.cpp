// Activation kernels, OpenMP. Same results as the naive twins bit for bit (same expressions); differences:
// parallel over the flat range, vectorised with omp simd.
#include "../activation.h"

namespace dyad::omp {

namespace {
// Serial below this many elements, like the elementwise kernels (see kParallelOver there).
constexpr int64_t kParallelOver = 1 << 14;
}  // namespace

void relu_fwd(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelOver)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];  // NaN < 0 is false: NaN stays
}

void relu_bwd(float* dx, const float* dy, const float* x, int64_t n) {
    // Naive skips dx where x <= 0; here every dx gets an add, of dy or of -0 (d + -0 == d bit for bit,
    // for -0 and NaN too; +0 would turn a -0 into +0). The select between two loaded values vectorises,
    // but only while the compiler cannot see that the -0 add is a no-op: it would rewrite the loop into
    // a conditional add, which it may not speculate (-ftrapping-math) and so leaves as a branch per
    // element. Hence the volatile read.
    const volatile float opaque_neg_zero = -0.0f;
    const float neg_zero = opaque_neg_zero;
#pragma omp parallel for simd schedule(static) if (n >= kParallelOver)
    for (int64_t i = 0; i < n; i++) {
        const float g = dy[i];
        dx[i] += x[i] > 0.0f ? g : neg_zero;
    }
}

}  // namespace dyad::omp
