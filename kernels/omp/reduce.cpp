// Reduction kernels, OpenMP. Twin of naive/reduce.cpp with the same contracts (kernels/reduce.h).
// Differences: sum_fwd adds in float, in a fixed order of lanes, blocks and chunks (not naive's double
// sequential sum), so it differs from naive by rounding only; max_fwd, min_fwd, sum_bwd and max_bwd give
// exactly naive's results. Work is cut into tasks by shape alone, never by thread count, so every result is
// the same for any number of threads.
#include "../reduce.h"

#include <algorithm>
#include <vector>

namespace dyad::omp {

namespace {

// Below this many elements the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;
// Independent accumulators for a contiguous row: 16 floats are four SSE or two AVX registers, enough to
// hide the add latency, and they cut the rounding error of one long running sum.
constexpr int kLanes = 16;
// Elements one float partial sum takes before it is added into a running total. Float rounding error
// grows with the size of the partial it is added to; this two-level sum keeps both levels short, so
// the error grows like eps * (kRun + n / kRun) rather than eps * n.
constexpr int64_t kRun = 64;
// Inner positions handled by one task: a row of 1024 float partial sums (4 KiB) stays in L1 while the
// reduced rows stream past it.
constexpr int64_t kBlock = 1024;
// Elements read by one task (256 KiB: within an L2). Longer reductions are split into chunks whose
// partial results are combined in chunk order afterwards, which gives the outer == 1 cases (a full
// sum, a bias gradient) work for every thread.
constexpr int64_t kTaskElems = 1 << 16;

// How a reduction is cut into tasks. Task (o, b, c) reduces rows [c * rows, (c + 1) * rows) of the
// inner positions [b * width, (b + 1) * width) of outer index o.
struct Tiling {
    int64_t width, num_blocks;  // along inner
    int64_t rows, num_chunks;   // along reduce
    int64_t num_tasks;

    explicit Tiling(const ReduceShape& s) {
        width = std::min(s.inner, kBlock);
        num_blocks = (s.inner + width - 1) / width;
        rows = std::max<int64_t>(1, kTaskElems / width);
        num_chunks = std::max<int64_t>(1, (s.reduce + rows - 1) / rows);
        num_tasks = s.outer * num_blocks * num_chunks;
    }
};

// Task number `task` of a tiling: outer index o, chunk c (reduced rows [r0, r1)) and inner positions
// [i0, i0 + w).
struct Task {
    int64_t o, c, i0, w, r0, r1;
    Task(const Tiling& t, const ReduceShape& s, int64_t task) {
        int64_t b = 0;
        if (t.num_chunks == 1 && t.num_blocks == 1) {  // one task per outer index: skip the divisions
            o = task, c = 0;
        } else {
            c = task % t.num_chunks;
            b = task / t.num_chunks % t.num_blocks;
            o = task / t.num_chunks / t.num_blocks;
        }
        i0 = b * t.width;
        w = std::min(t.width, s.inner - i0);
        r0 = c * t.rows;
        r1 = std::min(s.reduce, r0 + t.rows);
    }
};

template <typename Body>
void parallel_tasks(int64_t num_tasks, int64_t work, Body body) {
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t t = 0; t < num_tasks; t++) body(t);
}

// Calls body(lo, hi) on contiguous pieces of [0, n), one per thread.
template <typename Body>
void parallel_range(int64_t n, Body body) {
    const int64_t piece = 1 << 14;  // a multiple of any SIMD width; big enough to amortise the call
    const int64_t num_pieces = (n + piece - 1) / piece;
    parallel_tasks(num_pieces, n, [&](int64_t p) { body(p * piece, std::min(n, (p + 1) * piece)); });
}

// ---------------------------------------------------------------------------- sum
// Sum of x[0, n): kLanes lane sums over runs of kRun elements per lane, each run's lanes added into
// running lane totals, folded pairwise at the end.
float row_sum(const float* x, int64_t n) {
    float total[kLanes] = {};
    int64_t r = 0;
    while (r + kLanes <= n) {
        const int64_t end = std::min(n - n % kLanes, r + kRun * kLanes);
        float acc[kLanes] = {};
        for (; r < end; r += kLanes) {
#pragma omp simd
            for (int l = 0; l < kLanes; l++) acc[l] += x[r + l];
        }
#pragma omp simd
        for (int l = 0; l < kLanes; l++) total[l] += acc[l];
    }
    float tail = 0;
    for (; r < n; r++) tail += x[r];
    for (int half = kLanes / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) total[l] += total[l + half];
    return total[0] + tail;
}

// acc[i] = sum_r x[r * stride + i] for i < w <= kBlock, r < rows. Runs of kRun rows are summed into a
// fresh row, four rows per pass (fewer loads and stores of the partial row), then added into acc. The
// vector runs along i.
void column_sum(float* acc, const float* x, int64_t rows, int64_t stride, int64_t w) {
    std::fill(acc, acc + w, 0.0f);
    float run[kBlock];
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
        const int64_t r1 = std::min(rows, r0 + kRun);
        std::fill(run, run + w, 0.0f);
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) {
            const float *x0 = x + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
#pragma omp simd
            for (int64_t i = 0; i < w; i++) run[i] += (x0[i] + x1[i]) + (x2[i] + x3[i]);
        }
        for (; r < r1; r++) {
            const float* xr = x + r * stride;
#pragma omp simd
            for (int64_t i = 0; i < w; i++) run[i] += xr[i];
        }
#pragma omp simd
        for (int64_t i = 0; i < w; i++) acc[i] += run[i];
    }
}

// ---------------------------------------------------------------------------- max and min
// The first index r < n with pred(x[r]) true, or n. Blocks of kLanes are tested with a branch-free OR
// (vectorised) and only the block holding the hit is scanned one by one.
template <typename Pred>
int64_t find_first(const float* x, int64_t n, Pred pred) {
    int64_t r = 0;
    for (; r + kLanes <= n; r += kLanes) {
        int hit = 0;
#pragma omp simd reduction(| : hit)
        for (int l = 0; l < kLanes; l++) hit |= int(pred(x[r + l]));
        if (hit) break;
    }
    for (; r < n; r++)
        if (pred(x[r])) return r;
    return n;
}

// v beats b: the larger value for max (Min false), the smaller for min. False when either is NaN.
template <bool Min>
inline bool beats(float v, float b) {
    return Min ? v < b : v > b;
}

// Index of the first maximum (minimum when Min) of x[0, n), or of the first NaN when there is one
// (naive's rule); n >= 1. Two passes: the extreme in lanes (maxps / minps) with a per-lane NaN flag, then
// the first element equal to it (or the first NaN). The second pass rereads at most one task's elements,
// which are still in cache.
template <bool Min>
int64_t row_argext(const float* x, int64_t n) {
    if (n < 2 * kLanes) {  // naive's loop
        int64_t best = 0;
        for (int64_t r = 1; r < n && x[best] == x[best]; r++)
            if (beats<Min>(x[r], x[best]) || x[r] != x[r]) best = r;
        return best;
    }
    float m[kLanes];
    int32_t nan[kLanes];
    for (int l = 0; l < kLanes; l++) m[l] = x[l], nan[l] = int32_t(x[l] != x[l]);
    for (int64_t r = kLanes; r < n; r += kLanes) {
        r = std::min(r, n - kLanes);  // the last block may overlap the previous one: max and min do not mind
#pragma omp simd
        for (int l = 0; l < kLanes; l++) {
            const float v = x[r + l];
            m[l] = beats<Min>(v, m[l]) ? v : m[l];
            nan[l] |= int32_t(v != v);
        }
    }
    for (int half = kLanes / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) {
            m[l] = beats<Min>(m[l + half], m[l]) ? m[l + half] : m[l];
            nan[l] |= nan[l + half];
        }
    if (nan[0]) return find_first(x, n, [](float v) { return v != v; });
    const float top = m[0];
    return find_first(x, n, [top](float v) { return v == top; });  // -0 == +0: the first of either
}

// For i < w: best[i], arg[i] = value and index (r0 + row) of the first maximum (minimum when Min), or
// first NaN, of x[row * stride + i] over row < rows; rows >= 1. Branch-free per element so it vectorises
// along i.
template <bool Min>
void column_argext(float* best, int32_t* arg, const float* x, int64_t rows, int64_t stride, int64_t w, int64_t r0) {
    std::copy(x, x + w, best);
    std::fill(arg, arg + w, int32_t(r0));
    for (int64_t r = 1; r < rows; r++) {
        const float* xr = x + r * stride;
        const int32_t ri = int32_t(r0 + r);
#pragma omp simd
        for (int64_t i = 0; i < w; i++) {
            const float v = xr[i], b = best[i];
            // naive: take v when it beats b or is NaN, and stop once b is NaN (then v beats b is false too)
            const bool take = beats<Min>(v, b) | ((v != v) & (b == b));
            best[i] = take ? v : b;
            arg[i] = take ? ri : arg[i];
        }
    }
}

// max_fwd (Min false) and min_fwd (Min true).
template <bool Min>
void extreme_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s) {
    if (s.outer == 0 || s.inner == 0) return;
    const Tiling t(s);
    const int64_t work = s.outer * s.reduce * s.inner;
    // Results per task go to (outer, num_chunks, inner) partials when the reduce dim is split.
    const bool split = t.num_chunks > 1;
    std::vector<float> part_val(split ? size_t(s.outer * t.num_chunks * s.inner) : 0);
    std::vector<int32_t> part_idx(part_val.size());
    parallel_tasks(t.num_tasks, work, [&](int64_t task) {
        const Task k(t, s, task);
        const int64_t out = split ? (k.o * t.num_chunks + k.c) * s.inner + k.i0 : k.o * s.inner + k.i0;
        float* dst_val = split ? &part_val[size_t(out)] : y ? y + out : nullptr;
        int32_t* dst_idx = split ? &part_idx[size_t(out)] : idx + out;
        const float* src = x + (k.o * s.reduce + k.r0) * s.inner + k.i0;
        if (s.inner == 1) {
            const int64_t r = row_argext<Min>(src, k.r1 - k.r0);
            if (dst_val) dst_val[0] = src[r];
            dst_idx[0] = int32_t(k.r0 + r);
        } else {
            float best[kBlock];
            column_argext<Min>(best, dst_idx, src, k.r1 - k.r0, s.inner, k.w, k.r0);
            if (dst_val) std::copy(best, best + k.w, dst_val);
        }
    });
    if (!split) return;
    // Chunks are merged in order with naive's rule, which keeps the first extreme and the first NaN.
    parallel_tasks(s.outer * s.inner, s.outer * s.inner * t.num_chunks, [&](int64_t oi) {
        const int64_t o = oi / s.inner, i = oi % s.inner;
        const size_t base = size_t(o * t.num_chunks * s.inner + i);
        float best = part_val[base];
        int32_t arg = part_idx[base];
        for (int64_t c = 1; c < t.num_chunks && best == best; c++) {
            const float v = part_val[base + size_t(c * s.inner)];
            if (beats<Min>(v, best) || v != v) best = v, arg = part_idx[base + size_t(c * s.inner)];
        }
        if (y) y[oi] = best;
        idx[oi] = arg;
    });
}

}  // namespace

// ---------------------------------------------------------------------------- kernels
void sum_fwd(float* y, const float* x, const ReduceShape& s, float scale) {
    if (s.outer == 0 || s.inner == 0) return;
    const Tiling t(s);
    const int64_t work = s.outer * s.reduce * s.inner;
    // One chunk: tasks write y directly. Several: partial sums (outer, num_chunks, inner), added below.
    std::vector<float> part(t.num_chunks > 1 ? size_t(s.outer * t.num_chunks * s.inner) : 0);
    parallel_tasks(t.num_tasks, work, [&](int64_t task) {
        const Task k(t, s, task);
        float* dst =
            t.num_chunks > 1 ? &part[size_t((k.o * t.num_chunks + k.c) * s.inner + k.i0)] : y + k.o * s.inner + k.i0;
        const float* src = x + (k.o * s.reduce + k.r0) * s.inner + k.i0;
        if (s.inner == 1)
            dst[0] = row_sum(src, k.r1 - k.r0);
        else
            column_sum(dst, src, k.r1 - k.r0, s.inner, k.w);
        if (t.num_chunks == 1)
            for (int64_t i = 0; i < k.w; i++) dst[i] *= scale;
    });
    if (t.num_chunks == 1) return;
    // Chunks are added in order, one output at a time: the same order for any thread count.
    parallel_tasks(s.outer * s.inner, s.outer * s.inner * t.num_chunks, [&](int64_t oi) {
        const int64_t o = oi / s.inner, i = oi % s.inner;
        const float* p = &part[size_t(o * t.num_chunks * s.inner + i)];
        float acc = 0;
        for (int64_t c = 0; c < t.num_chunks; c++) acc += p[c * s.inner];
        y[oi] = acc * scale;
    });
}

void sum_bwd(float* dx, const float* dy, const ReduceShape& s, float scale) {
    // dx[o, r, i] += scale * dy[o, i]: the same float expression as naive, so the same bits. Each piece
    // of the flat range is walked in runs along the innermost contiguous direction.
    const int64_t n = s.outer * s.reduce * s.inner;
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        for (int64_t k = lo; k < hi;) {
            if (s.inner == 1) {  // dx row o gets one value: a run goes to the end of the row
                const int64_t o = k / s.reduce, end = std::min(hi, (o + 1) * s.reduce);
                const float g = scale * dy[o];
#pragma omp simd
                for (int64_t j = k; j < end; j++) dx[j] += g;
                k = end;
            } else {  // a run is (part of) one (o, r) row of inner values
                const int64_t i = k % s.inner, o = k / (s.reduce * s.inner);
                const int64_t len = std::min(hi - k, s.inner - i);
                float* d = dx + k;
                const float* g = dy + o * s.inner + i;
#pragma omp simd
                for (int64_t j = 0; j < len; j++) d[j] += scale * g[j];
                k += len;
            }
        }
    });
}

void max_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s) { extreme_fwd<false>(y, idx, x, s); }

void min_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s) { extreme_fwd<true>(y, idx, x, s); }

void max_bwd(float* dx, const float* dy, const int32_t* idx, const ReduceShape& s) {
    // Each output position sends its gradient to one distinct dx element: no two threads write the same.
    const int64_t n = s.outer * s.inner;
    parallel_tasks(n, n, [&](int64_t oi) {
        const int64_t o = oi / s.inner, i = oi % s.inner;
        dx[(o * s.reduce + idx[oi]) * s.inner + i] += dy[oi];
    });
}

}  // namespace dyad::omp
