// Softmax, log-softmax and cross-entropy kernels, OpenMP. Twin of naive/loss.cpp with the same contracts
// (kernels/loss.h). Differences: float arithmetic throughout (naive sums in double) and exp_approx below
// instead of std::exp, so results differ from naive by a few float roundings. Rows are independent, so
// work is cut by shape alone: every result is the same for any number of threads.
#include "../loss.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace dyad::omp {

namespace {

// Below this many elements the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 14;
// Inner positions handled together when softmax runs along a non-last dim: the per-position maxima and
// sums (2 x 256 floats) stay in L1 while the rows stream past.
constexpr int64_t kBlock = 256;

// c ? a : b on the bits. GCC (with the default -ftrapping-math) will not if-convert a float select
// inside a loop, which keeps the loop scalar; an integer select vectorises.
inline float select(bool c, float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, sizeof ia);
    std::memcpy(&ib, &b, sizeof ib);
    const int32_t m = -int32_t(c);
    const int32_t r = (ia & m) | (ib & ~m);
    float out;
    std::memcpy(&out, &r, sizeof out);
    return out;
}

// exp(x) for float, branch-free so `omp simd` loops vectorise it (std::exp is a library call that does
// not). Cody-Waite reduction x = n ln2 + r with |r| <= ln2 / 2 and a degree-6 Taylor polynomial: relative
// error below 2e-7 (about 2 ulp). Below -87.3 the result is 0 (expf's is subnormal or 0 there); from
// 88.38 on it is +inf (expf overflows only at 88.72, but every caller here passes x <= 0 or close to it);
// NaN stays NaN.
inline float exp_approx(float x) {
    const float hi = 88.7f, lo = -87.3f;
    float xc = select(x > hi, hi, x);
    xc = select(xc < lo, lo, xc);
    xc = select(x != x, 0.0f, xc);  // NaN: computed on 0 and replaced below (NaN to int is undefined)
    // Round to nearest by adding and subtracting 1.5 * 2^23 (SSE2 has no rounding instruction to vectorise
    // std::nearbyint with).
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;  // ln2 split in two: the first part is exact in n * part
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n for n in [-126, 127]; n = 128 gives +inf
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    float e = p * scale;
    e = select(x < lo, 0.0f, e);
    e = select(x > hi, INFINITY, e);
    return select(x != x, x, e);
}

template <typename Body>
void parallel_tasks(int64_t num_tasks, int64_t work, Body body) {
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t t = 0; t < num_tasks; t++) body(t);
}

// ---------------------------------------------------------------------------- contiguous rows
float row_max(const float* x, int64_t n) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++) m = std::max(m, x[j]);
    return m;
}

// sum(exp(x - m)); when y is not null, also y = exp(x - m).
float row_exp_sum(float* y, const float* x, int64_t n, float m) {
    float s = 0;
    if (y) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < n; j++) {
            const float e = exp_approx(x[j] - m);
            y[j] = e;
            s += e;
        }
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < n; j++) s += exp_approx(x[j] - m);
    }
    return s;
}

// The backward passes subtract a row sum from each element, and the results are often small next to the
// sum (they cancel): a float sum's rounding, which grows with the row, would dominate them. Summing in
// double keeps the error at the final float rounding, as in the naive kernels.
double row_sum(const float* x, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += double(x[j]);
    return s;
}

double row_dot(const float* a, const float* b, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += double(a[j]) * double(b[j]);
    return s;
}

// ---------------------------------------------------------------------------- strided rows (inner > 1)
// A task is a block of up to kBlock inner positions [i0, i0 + w) at one outer index; its rows are
// x[r * inner + i] for r < reduce. Vectors run along i.
struct Block {
    int64_t o, i0, w;
};

int64_t num_blocks(const ReduceShape& s) { return (s.inner + kBlock - 1) / kBlock; }

Block block_of(const ReduceShape& s, int64_t task) {
    const int64_t nb = num_blocks(s);
    Block b{task / nb, task % nb * kBlock, 0};
    b.w = std::min(kBlock, s.inner - b.i0);
    return b;
}

// m[i] = max over rows, sum[i] = sum over rows of exp(x - m[i]) (written to y too when y is not null).
void column_exp_sum(float* m, float* sum, float* y, const float* x, int64_t rows, int64_t stride, int64_t w) {
    std::fill(m, m + w, -INFINITY);
    std::fill(sum, sum + w, 0.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * stride;
#pragma omp simd
        for (int64_t i = 0; i < w; i++) m[i] = std::max(m[i], xr[i]);
    }
    for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * stride;
        if (y) {
            float* yr = y + r * stride;
#pragma omp simd
            for (int64_t i = 0; i < w; i++) {
                const float e = exp_approx(xr[i] - m[i]);
                yr[i] = e;
                sum[i] += e;
            }
        } else {
#pragma omp simd
            for (int64_t i = 0; i < w; i++) sum[i] += exp_approx(xr[i] - m[i]);
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------- softmax
void softmax_fwd(const ReduceShape& s, float* y, const float* x) {
    const int64_t work = s.outer * s.reduce * s.inner;
    if (work == 0) return;
    if (s.inner == 1) {
        parallel_tasks(s.outer, work, [&](int64_t o) {
            const float* xr = x + o * s.reduce;
            float* yr = y + o * s.reduce;
            const float inv = 1.0f / row_exp_sum(yr, xr, s.reduce, row_max(xr, s.reduce));
#pragma omp simd
            for (int64_t j = 0; j < s.reduce; j++) yr[j] *= inv;
        });
        return;
    }
    parallel_tasks(s.outer * num_blocks(s), work, [&](int64_t task) {
        const Block b = block_of(s, task);
        const int64_t off = b.o * s.reduce * s.inner + b.i0;
        float m[kBlock], sum[kBlock];
        column_exp_sum(m, sum, y + off, x + off, s.reduce, s.inner, b.w);
        for (int64_t i = 0; i < b.w; i++) sum[i] = 1.0f / sum[i];
        for (int64_t r = 0; r < s.reduce; r++) {
            float* yr = y + off + r * s.inner;
#pragma omp simd
            for (int64_t i = 0; i < b.w; i++) yr[i] *= sum[i];
        }
    });
}

void softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y) {
    const int64_t work = s.outer * s.reduce * s.inner;
    if (work == 0) return;
    if (s.inner == 1) {
        parallel_tasks(s.outer, work, [&](int64_t o) {
            const int64_t off = o * s.reduce;
            const float dot = float(row_dot(dy + off, y + off, s.reduce));
            float* d = dx + off;
            const float *g = dy + off, *yr = y + off;
#pragma omp simd
            for (int64_t j = 0; j < s.reduce; j++) d[j] += yr[j] * (g[j] - dot);
        });
        return;
    }
    parallel_tasks(s.outer * num_blocks(s), work, [&](int64_t task) {
        const Block b = block_of(s, task);
        const int64_t off = b.o * s.reduce * s.inner + b.i0;
        double acc[kBlock] = {};
        for (int64_t r = 0; r < s.reduce; r++) {
            const float *g = dy + off + r * s.inner, *yr = y + off + r * s.inner;
#pragma omp simd
            for (int64_t i = 0; i < b.w; i++) acc[i] += double(g[i]) * double(yr[i]);
        }
        float dot[kBlock];
        for (int64_t i = 0; i < b.w; i++) dot[i] = float(acc[i]);
        for (int64_t r = 0; r < s.reduce; r++) {
            const float *g = dy + off + r * s.inner, *yr = y + off + r * s.inner;
            float* d = dx + off + r * s.inner;
#pragma omp simd
            for (int64_t i = 0; i < b.w; i++) d[i] += yr[i] * (g[i] - dot[i]);
        }
    });
}

// ---------------------------------------------------------------------------- log-softmax
void log_softmax_fwd(const ReduceShape& s, float* y, const float* x) {
    const int64_t work = s.outer * s.reduce * s.inner;
    if (work == 0) return;
    if (s.inner == 1) {
        parallel_tasks(s.outer, work, [&](int64_t o) {
            const float* xr = x + o * s.reduce;
            float* yr = y + o * s.reduce;
            const float m = row_max(xr, s.reduce);
            const float shift = m + std::log(row_exp_sum(nullptr, xr, s.reduce, m));
#pragma omp simd
            for (int64_t j = 0; j < s.reduce; j++) yr[j] = (xr[j] - m) - (shift - m);
        });
        return;
    }
    parallel_tasks(s.outer * num_blocks(s), work, [&](int64_t task) {
        const Block b = block_of(s, task);
        const int64_t off = b.o * s.reduce * s.inner + b.i0;
        float m[kBlock], sum[kBlock];
        column_exp_sum(m, sum, nullptr, x + off, s.reduce, s.inner, b.w);
        for (int64_t i = 0; i < b.w; i++) sum[i] = std::log(sum[i]);
        for (int64_t r = 0; r < s.reduce; r++) {
            const float* xr = x + off + r * s.inner;
            float* yr = y + off + r * s.inner;
#pragma omp simd
            for (int64_t i = 0; i < b.w; i++) yr[i] = (xr[i] - m[i]) - sum[i];
        }
    });
}

void log_softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y) {
    const int64_t work = s.outer * s.reduce * s.inner;
    if (work == 0) return;
    if (s.inner == 1) {
        parallel_tasks(s.outer, work, [&](int64_t o) {
            const int64_t off = o * s.reduce;
            // In double, as naive: the result cancels against exp(y) * sum, so float rounding of either
            // term (or exp_approx's 2 ulp) would show in it.
            const double sum = row_sum(dy + off, s.reduce);
            float* d = dx + off;
            const float *g = dy + off, *yr = y + off;
            for (int64_t j = 0; j < s.reduce; j++) d[j] += float(double(g[j]) - std::exp(double(yr[j])) * sum);
        });
        return;
    }
    parallel_tasks(s.outer * num_blocks(s), work, [&](int64_t task) {
        const Block b = block_of(s, task);
        const int64_t off = b.o * s.reduce * s.inner + b.i0;
        double acc[kBlock] = {};
        for (int64_t r = 0; r < s.reduce; r++) {
            const float* g = dy + off + r * s.inner;
#pragma omp simd
            for (int64_t i = 0; i < b.w; i++) acc[i] += double(g[i]);
        }
        for (int64_t r = 0; r < s.reduce; r++) {
            const float *g = dy + off + r * s.inner, *yr = y + off + r * s.inner;
            float* d = dx + off + r * s.inner;
            for (int64_t i = 0; i < b.w; i++) d[i] += float(double(g[i]) - std::exp(double(yr[i])) * acc[i]);
        }
    });
}

// ---------------------------------------------------------------------------- cross-entropy
// L: the label type (int32_t or int64_t); the two public overloads below share these bodies.
namespace {

template <typename L>
void cross_entropy_fwd_impl(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const L* labels,
                            float eps) {
    // Per-row losses, then one sum in row order (in double: n is small next to n * c): the same result
    // for any thread count.
    std::vector<float> row_loss(size_t(std::max<int64_t>(n, 0)));
    parallel_tasks(n, n * c, [&](int64_t row) {
        const float* x = logits + row * c;
        const float m = row_max(x, c);
        const float l = m + std::log(row_exp_sum(nullptr, x, c, m));
        lse[row] = l;
        float v = (l - m) - (1.0f - eps) * (x[labels[row]] - m);
        if (eps != 0.0f) {
            // sum_c (x - m) rather than sum_c x: the smoothing term stays small for huge logits.
            float sx = 0;
#pragma omp simd reduction(+ : sx)
            for (int64_t j = 0; j < c; j++) sx += x[j] - m;
            v -= eps / float(c) * sx;
        }
        row_loss[size_t(row)] = v;
    });
    double total = 0;
    for (int64_t row = 0; row < n; row++) total += double(row_loss[size_t(row)]);
    loss[0] = float(total / double(n));
}

template <typename L>
void cross_entropy_bwd_impl(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits,
                            const float* lse, const L* labels, float eps) {
    const float g = dloss[0] / float(n), smooth = eps / float(c);
    parallel_tasks(n, n * c, [&](int64_t row) {
        const float* x = logits + row * c;
        float* dx = dlogits + row * c;
        const float l = lse[row];
#pragma omp simd
        for (int64_t j = 0; j < c; j++) dx[j] += g * (exp_approx(x[j] - l) - smooth);
        dx[labels[row]] -= g * (1.0f - eps);
    });
}

}  // namespace

void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int32_t* labels,
                       float eps) {
    cross_entropy_fwd_impl(n, c, loss, lse, logits, labels, eps);
}
void cross_entropy_fwd(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const int64_t* labels,
                       float eps) {
    cross_entropy_fwd_impl(n, c, loss, lse, logits, labels, eps);
}
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int32_t* labels, float eps) {
    cross_entropy_bwd_impl(n, c, dlogits, dloss, logits, lse, labels, eps);
}
void cross_entropy_bwd(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits, const float* lse,
                       const int64_t* labels, float eps) {
    cross_entropy_bwd_impl(n, c, dlogits, dloss, logits, lse, labels, eps);
}

}  // namespace dyad::omp
