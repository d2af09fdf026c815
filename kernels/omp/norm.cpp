// Batch normalisation kernels, OpenMP. Twin of naive/norm.cpp with the same contracts (kernels/norm.h).
// Threads take whole channels, so statistics need no cross-thread reduction and every result is the same
// for any thread count. Differences from naive: the forward's per-channel sums add in 16 float lanes, flushed
// into double totals every 1024 elements (naive adds every element in double), the backward's in 8 double
// lanes (see gradient_sums), and the statistics come from
// one pass of shifted sums (around the mean of the channel's first image) where naive makes two passes;
// the elementwise results are computed in float. The statistics differ from naive by rounding only
// (about 1e-7 relative).
// channels_last ((n, hw, c) operands) has kernels of its own: a channel's values are c apart there, so
// instead of one channel per thread each row of c values is one vector across channels. The per-channel
// sums add in double, one lane per channel (the terms formed in double, as naive's), into partials of
// groups of rows; the groups (fixed by the shape, never by the thread count) run in parallel and their
// partials are added in group order, so the results are the same for any thread count. Double lanes cost
// little in a pass bound by memory, and they keep the sums of large terms (the backward's dy * (x -
// mean) with a mean far from the running one) as accurate as naive's, where float runs would not be. The
// statistics are the same one-pass shifted sums, and the elementwise passes run over rows in parallel.
#include "../norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

// s1 += sum(g), s2 += sum(g * (x - m)) over [0, n), g = grad_at(dy, y), in double lanes with the terms
// formed in double (as naive's): with the running mean far from the batch's (eval backward), the terms of s2
// are large next to their sum, and float partial sums would lose the result to cancellation.
template <bool kRelu>
void gradient_sums(const float* dy, const float* y, const float* x, int64_t n, float m, double& s1, double& s2) {
    constexpr int kDoubleLanes = 8;
    double a1[kDoubleLanes] = {}, a2[kDoubleLanes] = {};
    int64_t r = 0;
    const double md = double(m);
    for (; r + kDoubleLanes <= n; r += kDoubleLanes) {
#pragma omp simd
        for (int l = 0; l < kDoubleLanes; l++) {
            const double g = double(grad_at<kRelu>(dy, y, r + l));
            a1[l] += g;
            a2[l] += g * (double(x[r + l]) - md);
        }
    }
    for (int l = 0; l < kDoubleLanes; l++) s1 += a1[l], s2 += a2[l];
    for (; r < n; r++) {
        const double g = double(grad_at<kRelu>(dy, y, r));
        s1 += g;
        s2 += g * (double(x[r]) - md);
    }
}

// Channel c's statistics from its shifted sums (s1 = sum of x - shift, s2 = sum of (x - shift)^2 over
// count values): saves the mean and invstd, updates the running statistics (unbiased variance), returns
// invstd.
float finish_stats(int64_t c, float shift, double s1, double s2, int64_t count, float eps, float momentum,
                   float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
    const double mean = double(shift) + (count > 0 ? s1 / double(count) : 0.0);
    const double var = count > 0 ? std::max(0.0, (s2 - s1 * s1 / double(count)) / double(count)) : 0.0;
    const float invstd = float(1.0 / std::sqrt(var + double(eps)));
    save_mean[c] = float(mean);
    save_invstd[c] = invstd;
    if (running_mean)
        running_mean[c] = float((1.0 - double(momentum)) * double(running_mean[c]) + double(momentum) * mean);
    if (running_var) {
        const double unbiased = count > 1 ? var * double(count) / double(count - 1) : var;
        running_var[c] = float((1.0 - double(momentum)) * double(running_var[c]) + double(momentum) * unbiased);
    }
    return invstd;
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
        const float invstd =
            finish_stats(c, mf, s1, s2, count, eps, momentum, save_mean, save_invstd, running_mean, running_var);
        normalise(s, c, y, x, save_mean[c], gamma ? invstd * gamma[c] : invstd, beta ? beta[c] : 0.0f, relu);
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

// ---------------------------------------------------------------------------- channels_last
// Operands (n, hw, c): rows = n * hw rows of c contiguous values, one per channel.

// Rows per group of the NHWC sums: about 2^14 values per group, enough work per task and few partials.
// A function of c only, never of the thread count.
int64_t group_rows(int64_t c) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(c, 1)); }

// s1[ch] += sum of a1 terms, s2[ch] += sum of a2 terms over rows [0, rows) of c channels, where
// row(r, a1, a2) adds row r's terms into the double accumulators a1[0, c) and a2[0, c): the partials of
// each group of rows, added afterwards in group order.
template <typename Row>
void channel_sums(int64_t rows, int64_t c, Row row, double* s1, double* s2) {
    if (rows <= 0 || c <= 0) return;
    const int64_t per_group = group_rows(c);
    const int64_t groups = (rows + per_group - 1) / per_group;
    std::vector<double> part(size_t(groups * 2 * c), 0.0);
#pragma omp parallel for schedule(static) if (rows * c >= kParallelOver)
    for (int64_t g = 0; g < groups; g++) {
        double* a1 = part.data() + g * 2 * c;
        double* a2 = a1 + c;
        const int64_t end = std::min(rows, (g + 1) * per_group);
        for (int64_t r = g * per_group; r < end; r++) row(r, a1, a2);
    }
    for (int64_t g = 0; g < groups; g++) {
        const double* p1 = part.data() + g * 2 * c;
        const double* p2 = p1 + c;
        for (int64_t ch = 0; ch < c; ch++) s1[ch] += p1[ch], s2[ch] += p2[ch];
    }
}

// Calls body(r) for every row r of rows, in parallel when the job is large enough.
template <typename Body>
void for_rows(int64_t rows, int64_t c, Body body) {
#pragma omp parallel for schedule(static) if (rows * c >= kParallelOver)
    for (int64_t r = 0; r < rows; r++) body(r);
}

// y = (x - m) * scale + shift with per-channel m, scale, shift (the NCHW expression), then relu_fwd's
// rule when relu.
void normalise_nhwc(const BatchNormShape& s, float* y, const float* x, const float* m, const float* scale,
                    const float* shift, bool relu) {
    const int64_t nc = s.c;
    for_rows(s.n * s.hw, nc, [&](int64_t r) {
        const float* xr = x + r * nc;
        float* yr = y + r * nc;
        if (relu) {
#pragma omp simd
            for (int64_t ch = 0; ch < nc; ch++) {
                const float v = (xr[ch] - m[ch]) * scale[ch] + shift[ch];
                yr[ch] = v < 0.0f ? 0.0f : v;
            }
        } else {
#pragma omp simd
            for (int64_t ch = 0; ch < nc; ch++) yr[ch] = (xr[ch] - m[ch]) * scale[ch] + shift[ch];
        }
    });
}

void fwd_train_nhwc(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                    float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                    float eps, bool relu) {
    const int64_t nc = s.c, count = s.n * s.hw;
    const size_t cs = size_t(nc);
    // The shift k of the one-pass statistics, as in NCHW: per channel, the mean of the first image.
    std::vector<double> k_sum(cs, 0.0), unused(cs, 0.0);
    if (s.n > 0)
        channel_sums(
            s.hw, nc,
            [&](int64_t r, double* a1, double*) {
                const float* xr = x + r * nc;
#pragma omp simd
                for (int64_t ch = 0; ch < nc; ch++) a1[ch] += double(xr[ch]);
            },
            k_sum.data(), unused.data());
    std::vector<float> k(cs);
    for (size_t ch = 0; ch < cs; ch++) k[ch] = s.hw > 0 ? float(k_sum[ch] / double(s.hw)) : 0.0f;
    std::vector<double> s1(cs, 0.0), s2(cs, 0.0);
    const float* kp = k.data();
    channel_sums(
        count, nc,
        [&](int64_t r, double* a1, double* a2) {
            const float* xr = x + r * nc;
#pragma omp simd
            for (int64_t ch = 0; ch < nc; ch++) {
                const double d = double(xr[ch]) - double(kp[ch]);
                a1[ch] += d;
                a2[ch] += d * d;
            }
        },
        s1.data(), s2.data());
    std::vector<float> m(cs), scale(cs), shift(cs);
    for (int64_t c = 0; c < nc; c++) {
        const float invstd = finish_stats(c, k[size_t(c)], s1[size_t(c)], s2[size_t(c)], count, eps, momentum,
                                          save_mean, save_invstd, running_mean, running_var);
        m[size_t(c)] = save_mean[c];
        scale[size_t(c)] = gamma ? invstd * gamma[c] : invstd;
        shift[size_t(c)] = beta ? beta[c] : 0.0f;
    }
    normalise_nhwc(s, y, x, m.data(), scale.data(), shift.data(), relu);
}

void fwd_eval_nhwc(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                   const float* running_var, const float* gamma, const float* beta, float eps, bool relu) {
    const size_t cs = size_t(s.c);
    std::vector<float> scale(cs), shift(cs);
    for (int64_t c = 0; c < s.c; c++) {
        const float invstd = float(1.0 / std::sqrt(double(running_var[c]) + double(eps)));
        scale[size_t(c)] = gamma ? invstd * gamma[c] : invstd;
        shift[size_t(c)] = beta ? beta[c] : 0.0f;
    }
    normalise_nhwc(s, y, x, running_mean, scale.data(), shift.data(), relu);
}

// The NHWC backward: NCHW's per-channel constants and float expressions, the sums by channel_sums and
// the dx pass over rows.
template <bool kRelu>
void bwd_nhwc(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
              const float* y, const float* x, const float* mean, const float* invstd, const float* gamma) {
    const int64_t nc = s.c, count = s.n * s.hw, rows = s.n * s.hw;
    const size_t cs = size_t(nc);
    std::vector<double> sum_dy(cs, 0.0), sum_dy_xc(cs, 0.0);
    if (training || dgamma || dbeta)
        channel_sums(
            rows, nc,
            [&](int64_t r, double* a1, double* a2) {
                const int64_t off = r * nc;
                const float* gy = dy + off;
                const float* ys = kRelu ? y + off : nullptr;
                const float* xr = x + off;
#pragma omp simd
                for (int64_t ch = 0; ch < nc; ch++) {
                    const double g = double(grad_at<kRelu>(gy, ys, ch));
                    a1[ch] += g;
                    a2[ch] += g * (double(xr[ch]) - double(mean[ch]));  // naive's term
                }
            },
            sum_dy.data(), sum_dy_xc.data());
    // Per channel: the parameter gradients, and dx's coefficients (eval: scale; training: a, b, d).
    std::vector<float> af(cs), bf(cs), df(cs);
    for (int64_t c = 0; c < nc; c++) {
        const size_t u = size_t(c);
        const double istd = double(invstd[c]);
        const double g = gamma ? double(gamma[c]) : 1.0;
        const double sum_dy_xhat = sum_dy_xc[u] * istd;
        if (dbeta) dbeta[c] += float(sum_dy[u]);
        if (dgamma) dgamma[c] += float(sum_dy_xhat);
        const double a = g * istd;
        af[u] = float(a);  // the eval dx's scale too: naive's expression, float(gamma * invstd)
        bf[u] = float(-a * istd * sum_dy_xhat / double(count));
        df[u] = float(-a * sum_dy[u] / double(count));
    }
    if (!dx) return;
    const float *ap = af.data(), *bp = bf.data(), *dp = df.data();
    for_rows(rows, nc, [&](int64_t r) {
        const int64_t off = r * nc;
        float* d = dx + off;
        const float* gy = dy + off;
        const float* ys = kRelu ? y + off : nullptr;
        if (!training) {
#pragma omp simd
            for (int64_t ch = 0; ch < nc; ch++) d[ch] += grad_at<kRelu>(gy, ys, ch) * ap[ch];
            return;
        }
        const float* xr = x + off;
#pragma omp simd
        for (int64_t ch = 0; ch < nc; ch++)
            d[ch] += ap[ch] * grad_at<kRelu>(gy, ys, ch) + bp[ch] * (xr[ch] - mean[ch]) + dp[ch];
    });
}

}  // namespace

void batch_norm_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                          float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                          float eps) {
    if (s.channels_last)
        return fwd_train_nhwc(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps,
                              false);
    fwd_train(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps, false);
}

void batch_norm_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps) {
    if (s.channels_last) return fwd_eval_nhwc(s, y, x, running_mean, running_var, gamma, beta, eps, false);
    fwd_eval(s, y, x, running_mean, running_var, gamma, beta, eps, false);
}

void batch_norm_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
                    const float* x, const float* mean, const float* invstd, const float* gamma) {
    if (s.channels_last) return bwd_nhwc<false>(s, training, dx, dgamma, dbeta, dy, nullptr, x, mean, invstd, gamma);
    bwd<false>(s, training, dx, dgamma, dbeta, dy, nullptr, x, mean, invstd, gamma);
}

void batch_norm_relu_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var, const float* x, const float* gamma,
                               const float* beta, float momentum, float eps) {
    if (s.channels_last)
        return fwd_train_nhwc(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps,
                              true);
    fwd_train(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps, true);
}

void batch_norm_relu_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps) {
    if (s.channels_last) return fwd_eval_nhwc(s, y, x, running_mean, running_var, gamma, beta, eps, true);
    fwd_eval(s, y, x, running_mean, running_var, gamma, beta, eps, true);
}

void batch_norm_relu_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta,
                         const float* dy, const float* y, const float* x, const float* mean, const float* invstd,
                         const float* gamma) {
    if (s.channels_last) return bwd_nhwc<true>(s, training, dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma);
    bwd<true>(s, training, dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma);
}

}  // namespace dyad::omp
