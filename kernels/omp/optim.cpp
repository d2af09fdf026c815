// Optimizer and regularisation kernels, OpenMP. Twin of naive/optim.cpp with the same contracts
// (kernels/optim.h) and the same float expressions element by element, so every result equals naive's
// bit for bit: the loops are only split across threads and vectorised (the modes of sgd_step become
// template parameters so each variant's loop has no branches). count_nonfinite adds per-thread counts.
#include "../optim.h"

#include <algorithm>
#include <cmath>

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
