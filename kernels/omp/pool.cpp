// Pooling kernels, OpenMP. Twin of naive/pool.cpp with the same contracts (kernels/pool.h). Threads take
// whole (n, c) planes, so no two threads write the same element and every result is the same for any
// thread count. Differences from naive: max pooling and every backward kernel give exactly naive's
// results (the same comparisons, the same float expressions in the same order); the average forwards add
// in float rather than double, so they differ from naive by rounding only. The 2x2 stride-2 unpadded max
// pool, the reference CNN's, has a branch-free path that vectorises along the output row. The fused relu
// + max pool is the same code (one template with a bool parameter) with relu applied to each element as
// it is loaded, and a backward that skips outputs that are not > 0.
#include "../pool.h"

#include <algorithm>

namespace dyad::omp {

namespace {

// Below this many elements touched the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;

struct Range {
    int64_t lo, hi;
};

Range window(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = i * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

Range adaptive_window(int64_t i, int64_t out, int64_t size) {
    return {i * size / out, ((i + 1) * size + out - 1) / out};
}

// Calls body(plane) for every (n, c) plane, in parallel when the whole job touches enough elements.
template <typename Body>
void for_planes(const Pool2dShape& s, Body body) {
    const int64_t planes = s.n * s.c;
    const int64_t work = planes * (s.h * s.w + s.p * s.q);
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t plane = 0; plane < planes; plane++) body(plane);
}

// naive's rule, branch-free: take v when it is larger than the best so far, or when it is the first NaN
// (once the best is NaN nothing is taken). !(v <= best) is true for v > best and for a NaN v; written this
// way (two compares and an and, all on floats) GCC vectorises the loops that use it.
inline bool take(float v, float best) { return !(v <= best) && best == best; }

// The element a max pool reads: x itself, or relu(x) for the fused relu + max pool (naive's relu_fwd
// expression, x < 0 ? 0 : x, so NaN and -0.0 pass unchanged; a compare and a blend, which vectorises).
template <bool Relu>
inline float load(float v) {
    return Relu && v < 0.0f ? 0.0f : v;
}

// One plane of the 2x2 stride-2 unpadded max pool: window (i, j) reads x[2i, 2j], x[2i, 2j + 1],
// x[2i + 1, 2j], x[2i + 1, 2j + 1] in that (row-major) order.
template <bool Relu, bool Idx>
void max_pool_2x2(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    for (int64_t i = 0; i < s.p; i++) {
        const float* r0 = x + 2 * i * s.w;
        const float* r1 = r0 + s.w;
        float* yr = y + i * s.q;
        int32_t* ir = Idx ? idx + i * s.q : nullptr;
        const int32_t row = int32_t(2 * i * s.w), w = int32_t(s.w);
#pragma omp simd
        for (int64_t j = 0; j < s.q; j++) {
            const int32_t base = row + 2 * int32_t(j);
            float best = load<Relu>(r0[2 * j]);
            int32_t arg = base;
            const float b = load<Relu>(r0[2 * j + 1]), c = load<Relu>(r1[2 * j]), d = load<Relu>(r1[2 * j + 1]);
            bool t = take(b, best);
            best = t ? b : best;
            arg = t ? base + 1 : arg;
            t = take(c, best);
            best = t ? c : best;
            arg = t ? base + w : arg;
            t = take(d, best);
            best = t ? d : best;
            arg = t ? base + w + 1 : arg;
            yr[j] = best;
            if constexpr (Idx) ir[j] = arg;
        }
    }
}

// One plane of any other max pool: the window walked in row-major order, as in naive.
template <bool Relu, bool Idx>
void max_pool_general(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    for (int64_t i = 0; i < s.p; i++) {
        const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
        for (int64_t j = 0; j < s.q; j++) {
            const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
            int64_t arg = rows.lo * s.w + cols.lo;
            float best = load<Relu>(x[arg]);
            for (int64_t r = rows.lo; r < rows.hi; r++) {
                const float* xr = x + r * s.w;
                for (int64_t c = cols.lo; c < cols.hi; c++) {
                    const float v = load<Relu>(xr[c]);
                    if (take(v, best)) best = v, arg = r * s.w + c;
                }
            }
            y[i * s.q + j] = best;
            if constexpr (Idx) idx[i * s.q + j] = int32_t(arg);
        }
    }
}

// The max pool forward, on relu(x) when Relu: each plane through the 2x2/2 path or the general one.
template <bool Relu>
void max_pool_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    const bool fast = s.kh == 2 && s.kw == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0;
    for_planes(s, [&](int64_t plane) {
        const int64_t in = plane * s.h * s.w, out = plane * s.p * s.q;
        if (idx == nullptr)  // inference: the positions are not needed, only the maxima
            fast ? max_pool_2x2<Relu, false>(s, y + out, nullptr, x + in)
                 : max_pool_general<Relu, false>(s, y + out, nullptr, x + in);
        else
            fast ? max_pool_2x2<Relu, true>(s, y + out, idx + out, x + in)
                 : max_pool_general<Relu, true>(s, y + out, idx + out, x + in);
    });
}

// The max pool backward: dx[idx] += dy in output order; when Relu, only where y > 0 (y unused otherwise).
template <bool Relu>
void max_pool_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const int64_t out = plane * s.p * s.q;
        const float* dyp = dy + out;
        const int32_t* ip = idx + out;
        if constexpr (Relu) {
            const float* yp = y + out;
            for (int64_t o = 0; o < s.p * s.q; o++)
                if (yp[o] > 0.0f) dxp[ip[o]] += dyp[o];
        } else {
            for (int64_t o = 0; o < s.p * s.q; o++) dxp[ip[o]] += dyp[o];
        }
    });
}

// Sum of x[0, n) in 16 float lanes (independent add chains, vectorised), folded pairwise.
float lane_sum(const float* x, int64_t n) {
    constexpr int kLanes = 16;
    float acc[kLanes] = {};
    int64_t r = 0;
    for (; r + kLanes <= n; r += kLanes) {
#pragma omp simd
        for (int l = 0; l < kLanes; l++) acc[l] += x[r + l];
    }
    float tail = 0;
    for (; r < n; r++) tail += x[r];
    for (int half = kLanes / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) acc[l] += acc[l + half];
    return acc[0] + tail;
}

// Sum of the window rows x [rows) x [cols) of a plane with row length w.
float window_sum(const float* x, int64_t w, Range rows, Range cols) {
    float acc = 0;
    for (int64_t r = rows.lo; r < rows.hi; r++) {
        const float* xr = x + r * w;
        for (int64_t c = cols.lo; c < cols.hi; c++) acc += xr[c];
    }
    return acc;
}

}  // namespace

void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) { max_pool_fwd<false>(s, y, idx, x); }

void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx) {
    max_pool_bwd<false>(s, dx, dy, idx, nullptr);
}

void relu_max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    max_pool_fwd<true>(s, y, idx, x);
}

void relu_max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    max_pool_bwd<true>(s, dx, dy, idx, y);
}

void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) {
    const float inv = float(1.0 / double(s.kh * s.kw));
    for_planes(s, [&](int64_t plane) {
        const float* xp = x + plane * s.h * s.w;
        float* yp = y + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++)
                yp[i * s.q + j] = window_sum(xp, s.w, rows, window(j, s.stride_w, s.pad_w, s.kw, s.w)) * inv;
        }
    });
}

void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) {
    const float inv = 1.0f / float(s.kh * s.kw);  // naive's expression, so naive's bits
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const float* dyp = dy + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                const float g = dyp[i * s.q + j] * inv;
                for (int64_t r = rows.lo; r < rows.hi; r++) {
                    float* d = dxp + r * s.w;
#pragma omp simd
                    for (int64_t c = cols.lo; c < cols.hi; c++) d[c] += g;
                }
            }
        }
    });
}

void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) {
    const bool global = s.p == 1 && s.q == 1;
    for_planes(s, [&](int64_t plane) {
        const float* xp = x + plane * s.h * s.w;
        float* yp = y + plane * s.p * s.q;
        if (global) {  // the whole plane is one contiguous run
            yp[0] = float(double(lane_sum(xp, s.h * s.w)) / double(s.h * s.w));
            return;
        }
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const float sum = window_sum(xp, s.w, rows, cols);
                yp[i * s.q + j] = float(double(sum) / double((rows.hi - rows.lo) * (cols.hi - cols.lo)));
            }
        }
    });
}

void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) {
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const float* dyp = dy + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const float g = dyp[i * s.q + j] / float((rows.hi - rows.lo) * (cols.hi - cols.lo));
                for (int64_t r = rows.lo; r < rows.hi; r++) {
                    float* d = dxp + r * s.w;
#pragma omp simd
                    for (int64_t c = cols.lo; c < cols.hi; c++) d[c] += g;
                }
            }
        }
    });
}

}  // namespace dyad::omp
