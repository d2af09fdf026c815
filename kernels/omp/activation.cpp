// Activation kernels, OpenMP. Same results as the naive twins bit for bit (same expressions);
// differences: parallel over the flat range, vectorised with omp simd.
#include "../activation.h"

namespace dyad::omp {

void relu_fwd(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void relu_bwd(float* dx, const float* dy, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace dyad::omp
