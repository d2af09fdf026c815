// Batch normalisation kernels, OpenMP. Twin of naive/norm.cpp with the same contracts (kernels/norm.h).
// Threads take whole channels, so statistics need no cross-thread reduction and every result is the same
// for any thread count. Differences from naive: the per-channel sums add in 16 float lanes, flushed into
// double totals every 1024 elements (naive adds every element in double), and the statistics come from
// one pass of shifted sums (around the mean of the channel's first image) where naive makes two passes;
// the elementwise results are computed in float. The statistics differ from naive by rounding only
// (about 1e-7 relative).
#include "../norm.h"

#include <algorithm>
#include <cmath>

namespace dyad::omp {

namespace {

// Below this many elements the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;
constexpr int kLanes = 16;
// Elements per lane before the lanes are flushed into the double totals: float error stays that of a
// 64-term sum, however long the channel.
constexpr int64_t kRun = 64;

inline double fold(float (&acc)[kLanes]) {
    for (int half = kLanes / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) acc[l] += acc[l + half];
    return double(acc[0]);
}

// s1 += sum(x - m), s2 += sum((x - m)^2) over x[0, n).
void deviation_sums(const float* x, int64_t n, float m, double& s1, double& s2) {
    int64_t r = 0;
    while (r + kLanes <= n) {
        const int64_t end = std::min(n - n % kLanes, r + kRun * kLanes);
        float a1[kLanes] = {}, a2[kLanes] = {};
        for (; r < end; r += kLanes) {
#pragma omp simd
            for (int l = 0; l < kLanes; l++) {
                const float d = x[r + l] - m;
                a1[l] += d;
                a2[l] += d * d;
            }
        }
        s1 += fold(a1);
        s2 += fold(a2);
    }
    for (; r < n; r++) {
        const double d = double(x[r] - m);
        s1 += d;
        s2 += d * d;
    }
}

// The gradient at batch norm's output: dy, or with a fused ReLU (y its output) dy where y > 0, else 0. dy
// is loaded whatever the mask says, so that the select vectorises (a conditional load would not, and its
// branch on a random mask mispredicts half the time).
template <bool kRelu>
inline float grad_at(const float* dy, const float* y, int64_t i) {
    const float g = dy[i];
    if constexpr (kRelu)
        return y[i] > 0.0f ? g : 0.0f;
    else
        return g;
}

// s1 += sum(g), s2 += sum(g * (x - m)) over [0, n), g = grad_at(dy, y).
template <bool kRelu>
void gradient_sums(const float* dy, const float* y, const float* x, int64_t n, float m, double& s1, double& s2) {
    int64_t r = 0;
    while (r + kLanes <= n) {
        const int64_t end = std::min(n - n % kLanes, r + kRun * kLanes);
        float a1[kLanes] = {}, a2[kLanes] = {};
        for (; r < end; r += kLanes) {
#pragma omp simd
            for (int l = 0; l < kLanes; l++) {
                const float g = grad_at<kRelu>(dy, y, r + l);
                a1[l] += g;
                a2[l] += g * (x[r + l] - m);
            }
        }
        s1 += fold(a1);
        s2 += fold(a2);
    }
    for (; r < n; r++) {
        const float g = grad_at<kRelu>(dy, y, r);
        s1 += double(g);
        s2 += double(g) * double(x[r] - m);
    }
}

template <typename Body>
void for_channels(const BatchNormShape& s, Body body) {
    const int64_t work = s.n * s.c * s.hw;
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t c = 0; c < s.c; c++) body(c);
}

// y = (x - m) * scale + shift over channel c's n segments, then relu_fwd's rule when relu.
void normalise(const BatchNormShape& s, int64_t c, float* y, const float* x, float m, float scale, float shift,
               bool relu) {
    for (int64_t n = 0; n < s.n; n++) {
        const int64_t off = (n * s.c + c) * s.hw;
        const float* xs = x + off;
        float* ys = y + off;
        if (relu) {
#pragma omp simd
            for (int64_t i = 0; i < s.hw; i++) {
                const float v = (xs[i] - m) * scale + shift;
                ys[i] = v < 0.0f ? 0.0f : v;
            }
        } else {
#pragma omp simd
            for (int64_t i = 0; i < s.hw; i++) ys[i] = (xs[i] - m) * scale + shift;
        }
    }
}

void fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
               float* running_var, const float* x, const float* gamma, const float* beta, float momentum, float eps,
               bool relu) {
    const int64_t count = s.n * s.hw;
    for_channels(s, [&](int64_t c) {
        // One pass for both statistics, around a shift k near the mean: the mean of the channel's first
        // image. var = (sum d^2 - (sum d)^2 / count) / count with d = x - k is exact in exact arithmetic
        // for any k; with k within a few standard deviations of the mean it loses no more than a digit to
        // cancellation (the shifted-data algorithm), where around 0 a large mean would lose them all.
        double k_sum = 0, unused = 0;
        if (s.n > 0) deviation_sums(x + c * s.hw, s.hw, 0.0f, k_sum, unused);
        const float mf = s.hw > 0 ? float(k_sum / double(s.hw)) : 0.0f;
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < s.n; n++) deviation_sums(x + (n * s.c + c) * s.hw, s.hw, mf, s1, s2);
        const double mean = double(mf) + (count > 0 ? s1 / double(count) : 0.0);
        const double var = count > 0 ? std::max(0.0, (s2 - s1 * s1 / double(count)) / double(count)) : 0.0;
        const float invstd = float(1.0 / std::sqrt(var + double(eps)));
        const float m = float(mean);
        save_mean[c] = m;
        save_invstd[c] = invstd;
        if (running_mean)
            running_mean[c] = float((1.0 - double(momentum)) * double(running_mean[c]) + double(momentum) * mean);
        if (running_var) {
            const double unbiased = count > 1 ? var * double(count) / double(count - 1) : var;
            running_var[c] = float((1.0 - double(momentum)) * double(running_var[c]) + double(momentum) * unbiased);
        }
        normalise(s, c, y, x, m, gamma ? invstd * gamma[c] : invstd, beta ? beta[c] : 0.0f, relu);
    });
}

void fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean, const float* running_var,
              const float* gamma, const float* beta, float eps, bool relu) {
    for_channels(s, [&](int64_t c) {
        const float invstd = float(1.0 / std::sqrt(double(running_var[c]) + double(eps)));
        normalise(s, c, y, x, running_mean[c], gamma ? invstd * gamma[c] : invstd, beta ? beta[c] : 0.0f, relu);
    });
}

// The backward; with kRelu, dy is masked by the fused ReLU's output y on the fly in both passes.
template <bool kRelu>
void bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
         const float* y, const float* x, const float* mean, const float* invstd, const float* gamma) {
    const int64_t count = s.n * s.hw;
    for_channels(s, [&](int64_t c) {
        const float m = mean[c];
        const double istd = double(invstd[c]);
        const double g = gamma ? double(gamma[c]) : 1.0;
        // The sums: for dgamma, dbeta and the training dx (the eval dx needs none).
        double sum_dy = 0, sum_dy_xc = 0;
        if (training || dgamma || dbeta)
            for (int64_t n = 0; n < s.n; n++) {
                const int64_t off = (n * s.c + c) * s.hw;
                gradient_sums<kRelu>(dy + off, kRelu ? y + off : nullptr, x + off, s.hw, m, sum_dy, sum_dy_xc);
            }
        const double sum_dy_xhat = sum_dy_xc * istd;
        if (dbeta) dbeta[c] += float(sum_dy);
        if (dgamma) dgamma[c] += float(sum_dy_xhat);
        if (!dx) return;
        if (!training) {
            const float scale = float(g * istd);  // naive's expression: the same bits
            for (int64_t n = 0; n < s.n; n++) {
                const int64_t off = (n * s.c + c) * s.hw;
                float* d = dx + off;
                const float* gy = dy + off;
                const float* ys = kRelu ? y + off : nullptr;
#pragma omp simd
                for (int64_t i = 0; i < s.hw; i++) d[i] += grad_at<kRelu>(gy, ys, i) * scale;
            }
            return;
        }
        // dx += a * dy + b * (x - mean) + d, as in naive, with the constants rounded to float.
        const double a = g * istd;
        const float af = float(a);
        const float bf = float(-a * istd * sum_dy_xhat / double(count));
        const float df = float(-a * sum_dy / double(count));
        for (int64_t n = 0; n < s.n; n++) {
            const int64_t off = (n * s.c + c) * s.hw;
            float* d = dx + off;
            const float* gy = dy + off;
            const float* xs = x + off;
            const float* ys = kRelu ? y + off : nullptr;
#pragma omp simd
            for (int64_t i = 0; i < s.hw; i++) d[i] += af * grad_at<kRelu>(gy, ys, i) + bf * (xs[i] - m) + df;
        }
    });
}

}  // namespace

void batch_norm_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                          float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                          float eps) {
    fwd_train(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps, false);
}

void batch_norm_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps) {
    fwd_eval(s, y, x, running_mean, running_var, gamma, beta, eps, false);
}

void batch_norm_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
                    const float* x, const float* mean, const float* invstd, const float* gamma) {
    bwd<false>(s, training, dx, dgamma, dbeta, dy, nullptr, x, mean, invstd, gamma);
}

void batch_norm_relu_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var, const float* x, const float* gamma,
                               const float* beta, float momentum, float eps) {
    fwd_train(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps, true);
}

void batch_norm_relu_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps) {
    fwd_eval(s, y, x, running_mean, running_var, gamma, beta, eps, true);
}

void batch_norm_relu_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta,
                         const float* dy, const float* y, const float* x, const float* mean, const float* invstd,
                         const float* gamma) {
    bwd<true>(s, training, dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma);
}

}  // namespace dyad::omp
