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
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const AdamParams& p) {
    const bool decay = p.weight_decay != 0.0;
    const T wd = T(p.weight_decay), shrink = T(1.0 - p.lr * p.weight_decay);
    const double w = 1.0 - p.beta1;  // lerp weight
    const T wt = T(w), one_minus_w = T(1.0 - w), b2 = T(p.beta2), one_minus_b2 = T(1.0 - p.beta2);
    const T step_size = T(p.lr / p.bias_correction1), bc2_sqrt = T(std::sqrt(p.bias_correction2)), eps = T(p.eps);
    for (int64_t i = 0; i < n; i++) {
        T g = grad[i], x = param[i];
        if (decay) {
            if (p.decoupled)
                x = x * shrink;
            else
                g = g + wd * x;
        }
        const T m = exp_avg[i];
        const T m1 = w < 0.5 ? m + wt * (g - m) : g - (g - m) * one_minus_w;
        const T v1 = exp_avg_sq[i] * b2 + (one_minus_b2 * g) * g;
        exp_avg[i] = m1;
        exp_avg_sq[i] = v1;
        T s = v1;
        if (p.amsgrad) {
            const T vmax = max_exp_avg_sq[i];
            s = vmax < v1 || std::isnan(v1) ? v1 : vmax;  // torch.maximum: NaN propagates
            max_exp_avg_sq[i] = s;
        }
        const T denom = std::sqrt(s) / bc2_sqrt + eps;
        param[i] = x - step_size * (m1 / denom);
    }
}

template <typename T>
double grad_norm_part(int64_t n, const T* x, bool inf_norm) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double v = double(x[i]);
        if (!inf_norm)
            acc += v * v;
        else if (std::isnan(v) || std::fabs(v) > acc)
            acc = std::isnan(acc) ? acc : std::fabs(v);
    }
    return acc;
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

#define DYAD_INSTANTIATE(T)                                                           \
    template void sgd_step<T>(int64_t, T*, const T*, T*, const SgdParams&);           \
    template void adam_step<T>(int64_t, T*, const T*, T*, T*, T*, const AdamParams&); \
    template double grad_norm_part<T>(int64_t, const T*, bool);                       \
    template void dropout_fwd<T>(int64_t, T*, uint8_t*, const T*, double, uint64_t);  \
    template void dropout_bwd<T>(int64_t, T*, const T*, const uint8_t*, double);      \
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
