// GEMM, naive: the triple loop over row-major, optionally transposed operands.
#include "../gemm.h"

namespace dyad::naive {

template <typename T>
void gemm(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
    for (int64_t p = 0; p < s.batch; p++) {
        const T* ap = a + p * s.stride_a;
        const T* bp = b + p * s.stride_b;
        T* cp = c + p * s.stride_c;
        for (int64_t i = 0; i < s.m; i++)
            for (int64_t j = 0; j < s.n; j++) {
                T acc = 0;
                for (int64_t l = 0; l < s.k; l++) {
                    const T av = s.trans_a ? ap[l * s.lda + i] : ap[i * s.lda + l];  // op(A)[i, l]
                    const T bv = s.trans_b ? bp[j * s.ldb + l] : bp[l * s.ldb + j];  // op(B)[l, j]
                    acc += av * bv;
                }
                T& out = cp[i * s.ldc + j];
                out = beta == T(0) ? alpha * acc : alpha * acc + beta * out;  // beta 0: C is not read
            }
    }
}

template void gemm<float>(const GemmShape&, float, const float*, const float*, float, float*);
template void gemm<double>(const GemmShape&, double, const double*, const double*, double, double*);

}  // namespace dyad::naive
