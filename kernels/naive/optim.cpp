// Optimizer and regularisation kernels, naive: one loop per kernel, arithmetic in T with the scalar
// parameters rounded to T once (as PyTorch's in-place ops do with their alpha).
#include "../optim.h"

#include <cmath>

namespace dyad::naive {

template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, const SgdParams& p) {
    const T lr = T(p.lr), mom = T(p.momentum), damp = T(1.0 - p.dampening), wd = T(p.weight_decay);
    const bool use_mom = p.momentum != 0.0;
    for (int64_t i = 0; i < n; i++) {
        T g = grad[i];
        if (p.weight_decay != 0.0) g = g + wd * param[i];
        if (use_mom) {
            const T b = p.first_step ? g : mom * momentum_buf[i] + damp * g;
            momentum_buf[i] = b;
            g = p.nesterov ? g + mom * b : b;
        }
        param[i] = param[i] - lr * g;
    }
}

template <typename T>
void dropout_fwd(int64_t n, T* y, uint8_t* mask, const T* x, double p, uint64_t seed) {
    const T scale = T(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; i++) {
        const bool keep = double(dropout_uniform(seed, uint64_t(i))) >= p;
        mask[i] = uint8_t(keep);
        y[i] = x[i] * (keep ? scale : T(0));
    }
}

template <typename T>
void dropout_bwd(int64_t n, T* dx, const T* dy, const uint8_t* mask, double p) {
    const T scale = T(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (mask[i] ? scale : T(0));
}

template <typename T>
int64_t count_nonfinite(int64_t n, const T* x) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !std::isfinite(x[i]);
    return bad;
}

#define DYAD_INSTANTIATE(T)                                                          \
    template void sgd_step<T>(int64_t, T*, const T*, T*, const SgdParams&);          \
    template void dropout_fwd<T>(int64_t, T*, uint8_t*, const T*, double, uint64_t); \
    template void dropout_bwd<T>(int64_t, T*, const T*, const uint8_t*, double);     \
    template int64_t count_nonfinite<T>(int64_t, const T*);
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive

namespace dyad::naive {
template <typename T>
void isfinite_fwd(int64_t n, uint8_t* out, const T* x) {
    for (int64_t i = 0; i < n; i++) out[i] = uint8_t(std::isfinite(x[i]));
}
template void isfinite_fwd<float>(int64_t, uint8_t*, const float*);
template void isfinite_fwd<double>(int64_t, uint8_t*, const double*);
}  // namespace dyad::naive
