// Optimizer and regularisation kernels, OpenMP. Twin of naive/optim.cpp with the same contracts
// (kernels/optim.h) and the same float expressions element by element, so every result equals naive's
// bit for bit: the loops are only split across threads and vectorised (the modes of sgd_step and adam_step
// become template parameters so each variant's loop has no branches). count_nonfinite adds per-thread
// counts; grad_norm_part adds fixed pieces' double partials in order (rounding differs from naive's one
// running sum, and is the same for any thread count).
#include "../optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dyad::omp {

namespace {

// Below this many elements the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;

// Calls body(lo, hi) on contiguous pieces of [0, n); pieces are cut by size alone.
template <typename Body>
void parallel_range(int64_t n, Body body) {
    const int64_t piece = 1 << 14;
    const int64_t num_pieces = (n + piece - 1) / piece;
#pragma omp parallel for schedule(static) if (n >= kParallelOver)
    for (int64_t t = 0; t < num_pieces; t++) body(t * piece, std::min(n, (t + 1) * piece));
}

template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_range(int64_t lo, int64_t hi, float* __restrict param, const float* __restrict grad, float* __restrict buf,
               float lr, float mom, float damp, float wd) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float g = grad[i];
        if constexpr (kDecay) g = g + wd * param[i];
        if constexpr (kMomentum) {
            const float b = kFirst ? g : mom * buf[i] + damp * g;
            buf[i] = b;
            g = kNesterov ? g + mom * b : b;
        }
        param[i] = param[i] - lr * g;
    }
}

template <bool kDecay>
void sgd_dispatch(int64_t n, float* param, const float* grad, float* buf, const SgdParams& p) {
    const float lr = float(p.lr), mom = float(p.momentum), damp = float(1.0 - p.dampening), wd = float(p.weight_decay);
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        if (p.momentum == 0.0)
            sgd_range<kDecay, false, false, false>(lo, hi, param, grad, buf, lr, mom, damp, wd);
        else if (p.first_step)
            p.nesterov ? sgd_range<kDecay, true, true, true>(lo, hi, param, grad, buf, lr, mom, damp, wd)
                       : sgd_range<kDecay, true, true, false>(lo, hi, param, grad, buf, lr, mom, damp, wd);
        else
            p.nesterov ? sgd_range<kDecay, true, false, true>(lo, hi, param, grad, buf, lr, mom, damp, wd)
                       : sgd_range<kDecay, true, false, false>(lo, hi, param, grad, buf, lr, mom, damp, wd);
    });
}

}  // namespace

void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p) {
    if (p.weight_decay != 0.0)
        sgd_dispatch<true>(n, param, grad, momentum_buf, p);
    else
        sgd_dispatch<false>(n, param, grad, momentum_buf, p);
}

namespace {
// One Adam variant's loop, its modes as template parameters so the loop has no branches.
template <bool kDecay, bool kDecoupled, bool kAmsgrad, bool kLowWeight>
void adam_range(int64_t lo, int64_t hi, float* __restrict param, const float* __restrict grad,
                float* __restrict exp_avg, float* __restrict exp_avg_sq, float* __restrict vmax, const AdamParams& p) {
    const float wd = float(p.weight_decay), shrink = float(1.0 - p.lr * p.weight_decay);
    const double w = 1.0 - p.beta1;
    const float wt = float(w), one_minus_w = float(1.0 - w), b2 = float(p.beta2), one_minus_b2 = float(1.0 - p.beta2);
    const float step_size = float(p.lr / p.bias_correction1), bc2_sqrt = float(std::sqrt(p.bias_correction2));
    const float eps = float(p.eps);
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float g = grad[i], x = param[i];
        if constexpr (kDecay && kDecoupled) x = x * shrink;
        if constexpr (kDecay && !kDecoupled) g = g + wd * x;
        const float m = exp_avg[i];
        const float m1 = kLowWeight ? m + wt * (g - m) : g - (g - m) * one_minus_w;
        const float v1 = exp_avg_sq[i] * b2 + (one_minus_b2 * g) * g;
        exp_avg[i] = m1;
        exp_avg_sq[i] = v1;
        float s = v1;
        if constexpr (kAmsgrad) {
            const float old = vmax[i];
            s = old < v1 || v1 != v1 ? v1 : old;  // NaN propagates, as naive and torch.maximum
            vmax[i] = s;
        }
        const float denom = std::sqrt(s) / bc2_sqrt + eps;
        param[i] = x - step_size * (m1 / denom);
    }
}

template <bool kDecay, bool kDecoupled>
void adam_modes(int64_t n, float* param, const float* grad, float* m, float* v, float* vmax, const AdamParams& p) {
    const bool low = 1.0 - p.beta1 < 0.5;
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        if (p.amsgrad)
            low ? adam_range<kDecay, kDecoupled, true, true>(lo, hi, param, grad, m, v, vmax, p)
                : adam_range<kDecay, kDecoupled, true, false>(lo, hi, param, grad, m, v, vmax, p);
        else
            low ? adam_range<kDecay, kDecoupled, false, true>(lo, hi, param, grad, m, v, vmax, p)
                : adam_range<kDecay, kDecoupled, false, false>(lo, hi, param, grad, m, v, vmax, p);
    });
}
}  // namespace

void adam_step(int64_t n, float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const AdamParams& p) {
    if (p.weight_decay == 0.0)
        adam_modes<false, false>(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, p);
    else if (p.decoupled)
        adam_modes<true, true>(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, p);
    else
        adam_modes<true, false>(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, p);
}

double grad_norm_part(int64_t n, const float* x, bool inf_norm) {
    // Fixed pieces, each summed in double in index order, then the pieces added in order: the same bits
    // for any thread count.
    const int64_t piece = 1 << 14;
    const int64_t num_pieces = (n + piece - 1) / piece;
    std::vector<double> part(size_t(std::max<int64_t>(num_pieces, 0)), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelOver)
    for (int64_t t = 0; t < num_pieces; t++) {
        const int64_t lo = t * piece, hi = std::min(n, lo + piece);
        double acc = 0.0;
        if (!inf_norm) {
            // A vector of partial sums (the order is fixed by the compiled vector width, not by threads).
#pragma omp simd reduction(+ : acc)
            for (int64_t i = lo; i < hi; i++) acc += double(x[i]) * double(x[i]);
        } else {
            for (int64_t i = lo; i < hi; i++) {
                const double a = std::fabs(double(x[i]));
                if (a != a || a > acc) acc = acc != acc ? acc : a;
            }
        }
        part[size_t(t)] = acc;
    }
    double total = 0.0;
    for (double v : part) {
        if (!inf_norm)
            total += v;
        else if (v != v || v > total)
            total = total != total ? total : v;
    }
    return total;
}

void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed) {
    const float scale = float(1.0 / (1.0 - p));
    // u >= p in double equals u >= the smallest float not below p, since u is a float: one float compare.
    float pf = float(p);
    if (double(pf) < p) pf = std::nextafter(pf, 2.0f);
    parallel_range(n, [=](int64_t lo, int64_t hi) {
        // Local restrict copies: the uint8 mask store may alias anything, which would otherwise make the
        // compiler reload every pointer per element and give up on vectorising.
        float* __restrict yr = y;
        uint8_t* __restrict mr = mask;
        const float* __restrict xr = x;
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            const bool keep = dropout_uniform(seed, uint64_t(i)) >= pf;
            mr[i] = uint8_t(keep);
            yr[i] = xr[i] * (keep ? scale : 0.0f);
        }
    });
}

void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p) {
    const float scale = float(1.0 / (1.0 - p));
    parallel_range(n, [=](int64_t lo, int64_t hi) {
        float* __restrict dxr = dx;
        const float* __restrict dyr = dy;
        const uint8_t* __restrict mr = mask;
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) dxr[i] += dyr[i] * (mr[i] ? scale : 0.0f);
    });
}

int64_t count_nonfinite(int64_t n, const float* x) {
    int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n >= kParallelOver)
    for (int64_t i = 0; i < n; i++) bad += int64_t(!(x[i] - x[i] == 0.0f));  // inf - inf and NaN are NaN
    return bad;
}

}  // namespace dyad::omp

namespace dyad::omp {
// x - x is 0 for finite x and NaN for inf and NaN; the comparison vectorises where std::isfinite may not.
void isfinite_fwd(int64_t n, uint8_t* out, const float* x) {
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 16))
    for (int64_t i = 0; i < n; i++) out[i] = uint8_t((x[i] - x[i]) == 0.0f);
}
}  // namespace dyad::omp
