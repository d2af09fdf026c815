// Batch normalisation kernels, naive: one channel at a time, statistics and reductions in double (two
// passes: the mean, then the squared deviations from it), the elementwise results in T.
#include "../norm.h"

#include <cmath>
#include <vector>

namespace dyad::naive {

template <typename T>
void batch_norm_fwd_train(const BatchNormShape& s, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                          const T* x, const T* gamma, const T* beta, T momentum, T eps) {
    const int64_t count = s.n * s.hw;
    for (int64_t c = 0; c < s.c; c++) {
        double sum = 0;
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) sum += double(x[s.at(n, c, i)]);
        const double mean = count > 0 ? sum / double(count) : 0.0;
        double sq = 0;
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) {
                const double d = double(x[s.at(n, c, i)]) - mean;
                sq += d * d;
            }
        const double var = count > 0 ? sq / double(count) : 0.0;
        const T invstd = T(1.0 / std::sqrt(var + double(eps)));
        const T m = T(mean);
        save_mean[c] = m;
        save_invstd[c] = invstd;
        if (running_mean)
            running_mean[c] = T((1.0 - double(momentum)) * double(running_mean[c]) + double(momentum) * mean);
        if (running_var) {
            const double unbiased = count > 1 ? var * double(count) / double(count - 1) : var;
            running_var[c] = T((1.0 - double(momentum)) * double(running_var[c]) + double(momentum) * unbiased);
        }
        const T scale = gamma ? invstd * gamma[c] : invstd;
        const T shift = beta ? beta[c] : T(0);
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) {
                const int64_t k = s.at(n, c, i);
                y[k] = (x[k] - m) * scale + shift;
            }
    }
}

template <typename T>
void batch_norm_fwd_eval(const BatchNormShape& s, T* y, const T* x, const T* running_mean, const T* running_var,
                         const T* gamma, const T* beta, T eps) {
    for (int64_t c = 0; c < s.c; c++) {
        const T invstd = T(1.0 / std::sqrt(double(running_var[c]) + double(eps)));
        const T m = running_mean[c];
        const T scale = gamma ? invstd * gamma[c] : invstd;
        const T shift = beta ? beta[c] : T(0);
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) {
                const int64_t k = s.at(n, c, i);
                y[k] = (x[k] - m) * scale + shift;
            }
    }
}

template <typename T>
void batch_norm_bwd(const BatchNormShape& s, bool training, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                    const T* mean, const T* invstd, const T* gamma) {
    const int64_t count = s.n * s.hw;
    for (int64_t c = 0; c < s.c; c++) {
        // sum(dy) and sum(dy * xhat) with xhat = (x - mean) * invstd.
        double sum_dy = 0, sum_dy_xc = 0;
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) {
                const int64_t k = s.at(n, c, i);
                sum_dy += double(dy[k]);
                sum_dy_xc += double(dy[k]) * (double(x[k]) - double(mean[c]));
            }
        const double istd = double(invstd[c]);
        const double sum_dy_xhat = sum_dy_xc * istd;
        if (dbeta) dbeta[c] += T(sum_dy);
        if (dgamma) dgamma[c] += T(sum_dy_xhat);
        if (!dx) continue;
        const double g = gamma ? double(gamma[c]) : 1.0;
        if (!training) {  // the statistics are constants: dx = dy * gamma * invstd
            const T scale = T(g * istd);
            for (int64_t n = 0; n < s.n; n++)
                for (int64_t i = 0; i < s.hw; i++) {
                    const int64_t k = s.at(n, c, i);
                    dx[k] += dy[k] * scale;
                }
            continue;
        }
        // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
        //    = a * dy + b * (x - mean) + d, with the per-channel constants below.
        const double a = g * istd;
        const double b = -a * istd * sum_dy_xhat / double(count);
        const double d = -a * sum_dy / double(count);
        for (int64_t n = 0; n < s.n; n++)
            for (int64_t i = 0; i < s.hw; i++) {
                const int64_t k = s.at(n, c, i);
                dx[k] += T(a * double(dy[k]) + b * (double(x[k]) - double(mean[c])) + d);
            }
    }
}

// The fused pair as its two parts: batch norm, then relu_fwd's rule in place; relu_bwd's mask on dy, then
// batch_norm_bwd.
template <typename T>
void batch_norm_relu_fwd_train(const BatchNormShape& s, T* y, T* save_mean, T* save_invstd, T* running_mean,
                               T* running_var, const T* x, const T* gamma, const T* beta, T momentum, T eps) {
    batch_norm_fwd_train(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps);
    for (int64_t k = 0; k < s.n * s.c * s.hw; k++) y[k] = y[k] < T(0) ? T(0) : y[k];
}

template <typename T>
void batch_norm_relu_fwd_eval(const BatchNormShape& s, T* y, const T* x, const T* running_mean, const T* running_var,
                              const T* gamma, const T* beta, T eps) {
    batch_norm_fwd_eval(s, y, x, running_mean, running_var, gamma, beta, eps);
    for (int64_t k = 0; k < s.n * s.c * s.hw; k++) y[k] = y[k] < T(0) ? T(0) : y[k];
}

template <typename T>
void batch_norm_relu_bwd(const BatchNormShape& s, bool training, T* dx, T* dgamma, T* dbeta, const T* dy, const T* y,
                         const T* x, const T* mean, const T* invstd, const T* gamma) {
    std::vector<T> masked(size_t(s.n * s.c * s.hw));
    for (size_t k = 0; k < masked.size(); k++) masked[k] = y[k] > T(0) ? dy[k] : T(0);
    batch_norm_bwd(s, training, dx, dgamma, dbeta, masked.data(), x, mean, invstd, gamma);
}

#define DYAD_INSTANTIATE(T)                                                                                           \
    template void batch_norm_fwd_train<T>(const BatchNormShape&, T*, T*, T*, T*, T*, const T*, const T*, const T*, T, \
                                          T);                                                                         \
    template void batch_norm_fwd_eval<T>(const BatchNormShape&, T*, const T*, const T*, const T*, const T*, const T*, \
                                         T);                                                                          \
    template void batch_norm_bwd<T>(const BatchNormShape&, bool, T*, T*, T*, const T*, const T*, const T*, const T*,  \
                                    const T*);                                                                        \
    template void batch_norm_relu_fwd_train<T>(const BatchNormShape&, T*, T*, T*, T*, T*, const T*, const T*,         \
                                               const T*, T, T);                                                       \
    template void batch_norm_relu_fwd_eval<T>(const BatchNormShape&, T*, const T*, const T*, const T*, const T*,      \
                                              const T*, T);                                                           \
    template void batch_norm_relu_bwd<T>(const BatchNormShape&, bool, T*, T*, T*, const T*, const T*, const T*,       \
                                         const T*, const T*, const T*);
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive
