// Pooling kernels, CUDA (contracts in kernels/pool.h). Forward kernels take one thread per output and
// walk its window in naive's row-major order; backward kernels take one thread per input element and
// gather the gradient of every window that covers it, in increasing output order, so they need no
// atomics. Every kernel gives exactly naive's results: max pooling uses naive's comparisons (first
// maximum wins, NaN wins), the average forwards add in double and round once as naive does, and the
// backward kernels add the same float terms in the same order as naive's scatter (written with
// __fmul_rn/__fadd_rn so nvcc does not contract them into FMAs). Grid-stride loops, int64 offsets. The
// fused relu + max pool shares the max pool kernels (a bool template parameter): the forward applies
// relu to each element as it reads it, the backward also requires the window's output to be > 0.
//
// Layouts: each thread takes the element at its index in its output's (forward: y, backward: dx) memory
// order and decodes (image, channel, position) from it by the shape's layout. In NCHW consecutive
// threads walk one plane; in NHWC (channels_last) they walk the channels of one pixel, so both the
// writes and the window's reads (the same pixel of neighbouring channels) are coalesced. The window of a
// thread is read through its plane's base offset and the distance between neighbouring positions of a
// plane (1 in NCHW, c in NHWC); max pooling's positions stay h_in * w + w_in.
//
// bfloat16: every kernel is a template on the element type. Elements are widened to float as they are
// read (exactly, so max pooling compares the same values), the arithmetic is the float kernel's, and each
// result is rounded once as it is stored: the averages' double result first to float (naive's float
// kernel) and then to bfloat16, the backward kernels' accumulated float dx once at the end.
#include "../pool.h"
#include "context.h"

namespace dyad::cuda {

namespace {

// Rows [lo, hi) of the input that fixed window i covers (the padding clipped off), as naive's window().
struct Range {
    int64_t lo, hi;
};

__device__ inline Range window(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = i * stride - pad;
    return {start > 0 ? start : 0, start + k < size ? start + k : size};
}

// Adaptive window i of `out` over `size`: [floor(i * size / out), ceil((i + 1) * size / out)).
__device__ inline Range adaptive_window(int64_t i, int64_t out, int64_t size) {
    return {i * size / out, ((i + 1) * size + out - 1) / out};
}

// Fixed windows [lo, hi] (inclusive, possibly empty) whose unclipped span [i * stride - pad, + k) holds
// input row r: i * stride - pad <= r and i * stride - pad + k > r, within [0, out).
__device__ inline Range covering(int64_t r, int64_t stride, int64_t pad, int64_t k, int64_t out) {
    const int64_t t = r + pad - k + 1;  // the smallest window start that still reaches r
    const int64_t lo = t <= 0 ? 0 : (t + stride - 1) / stride;
    const int64_t hi_unclipped = (r + pad) / stride;  // r + pad >= 0
    return {lo, hi_unclipped < out - 1 ? hi_unclipped : out - 1};
}

// Adaptive windows [lo, hi] (inclusive) that hold input row r: window i holds r when
// floor(i * size / out) <= r < ceil((i + 1) * size / out), that is floor(r * out / size) <= i <=
// ceil((r + 1) * out / size) - 1.
__device__ inline Range adaptive_covering(int64_t r, int64_t out, int64_t size) {
    const int64_t lo = r * out / size;
    const int64_t hi = ((r + 1) * out + size - 1) / size - 1;
    return {lo, hi < out - 1 ? hi : out - 1};
}

// Where element `e` of an (n, c, rows * cols) operand stored in the shape's layout lies: its image,
// channel and position within the plane. NCHW: e = (n * c + ch) * plane + pos; NHWC: e = (n * plane +
// pos) * c + ch.
struct Element {
    int64_t n, ch, pos;
};
__device__ inline Element decode(int64_t e, int64_t c, int64_t plane, bool channels_last) {
    if (channels_last) return {e / (plane * c), e % c, e / c % plane};
    return {e / (plane * c), e / plane % c, e % plane};
}

// A plane of the operand: element `pos` is at base + pos * step.
struct Plane {
    int64_t base, step;
};
__device__ inline Plane x_plane(const Pool2dShape& s, int64_t n, int64_t ch) {
    return {s.x_at(n, ch, 0), s.channels_last ? s.c : 1};
}
__device__ inline Plane y_plane(const Pool2dShape& s, int64_t n, int64_t ch) {
    return {s.y_at(n, ch, 0), s.channels_last ? s.c : 1};
}

// The element a max pool reads: x itself, or relu(x) for the fused relu + max pool (naive's relu_fwd
// expression, x < 0 ? 0 : x, so NaN and -0.0 pass unchanged).
template <bool Relu>
__device__ inline float load(float v) {
    return Relu && v < 0.0f ? 0.0f : v;
}

template <bool Relu, typename T>
__global__ void max_pool_fwd_kernel(Pool2dShape s, T* y, int32_t* idx, const T* x, int64_t total) {
    for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(o, s.c, s.p * s.q, s.channels_last);
        const int64_t j = el.pos % s.q, i = el.pos / s.q;
        const Plane xp = x_plane(s, el.n, el.ch);
        const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
        const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
        int64_t best = rows.lo * s.w + cols.lo;
        float bv = load<Relu>(float(x[xp.base + best * xp.step]));
        // naive's scan: take v when v > best or v is NaN; stop at the first NaN (a NaN first element is
        // never replaced).
        bool done = isnan(bv);
        for (int64_t r = rows.lo; r < rows.hi && !done; r++)
            for (int64_t c = cols.lo; c < cols.hi; c++) {
                const float v = load<Relu>(float(x[xp.base + (r * s.w + c) * xp.step]));
                if (v > bv || isnan(v)) {
                    best = r * s.w + c;
                    bv = v;
                    if (isnan(v)) {
                        done = true;
                        break;
                    }
                }
            }
        y[o] = T(bv);
        if (idx) idx[o] = int32_t(best);  // null when nothing will run backward
    }
}

// Each input element adds the gradient of every covering window whose maximum it is (and, when Relu,
// whose output is > 0; y is not read otherwise), in increasing output order as naive's scatter.
template <bool Relu, typename T>
__global__ void max_pool_bwd_kernel(Pool2dShape s, T* dx, const T* dy, const int32_t* idx, const T* y, int64_t total) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(e, s.c, s.h * s.w, s.channels_last);
        const int64_t c = el.pos % s.w, r = el.pos / s.w;
        const int32_t me = int32_t(el.pos);
        const Range wi = covering(r, s.stride_h, s.pad_h, s.kh, s.p);
        const Range wj = covering(c, s.stride_w, s.pad_w, s.kw, s.q);
        const Plane out = y_plane(s, el.n, el.ch);
        float acc = float(dx[e]);
        for (int64_t i = wi.lo; i <= wi.hi; i++)
            for (int64_t j = wj.lo; j <= wj.hi; j++) {
                const int64_t o = out.base + (i * s.q + j) * out.step;
                if (idx[o] == me && (!Relu || float(y[o]) > 0.0f)) acc = __fadd_rn(acc, float(dy[o]));
            }
        dx[e] = T(acc);
    }
}

template <typename T>
__global__ void avg_pool_fwd_kernel(Pool2dShape s, T* y, const T* x, double inv, int64_t total) {
    for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(o, s.c, s.p * s.q, s.channels_last);
        const int64_t j = el.pos % s.q, i = el.pos / s.q;
        const Plane xp = x_plane(s, el.n, el.ch);
        const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
        const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
        double acc = 0;
        for (int64_t r = rows.lo; r < rows.hi; r++)
            for (int64_t c = cols.lo; c < cols.hi; c++)
                acc = __dadd_rn(acc, double(float(x[xp.base + (r * s.w + c) * xp.step])));
        y[o] = T(float(__dmul_rn(acc, inv)));
    }
}

// Every window covering an input element holds it (the clipping only removes padding), so each covering
// window adds dy * inv, as naive's scatter does.
template <typename T>
__global__ void avg_pool_bwd_kernel(Pool2dShape s, T* dx, const T* dy, float inv, int64_t total) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(e, s.c, s.h * s.w, s.channels_last);
        const int64_t c = el.pos % s.w, r = el.pos / s.w;
        const Range wi = covering(r, s.stride_h, s.pad_h, s.kh, s.p);
        const Range wj = covering(c, s.stride_w, s.pad_w, s.kw, s.q);
        const Plane dyp = y_plane(s, el.n, el.ch);
        float acc = float(dx[e]);
        for (int64_t i = wi.lo; i <= wi.hi; i++)
            for (int64_t j = wj.lo; j <= wj.hi; j++)
                acc = __fadd_rn(acc, __fmul_rn(float(dy[dyp.base + (i * s.q + j) * dyp.step]), inv));
        dx[e] = T(acc);
    }
}

template <typename T>
__global__ void adaptive_avg_fwd_kernel(Pool2dShape s, T* y, const T* x, int64_t total) {
    for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(o, s.c, s.p * s.q, s.channels_last);
        const int64_t j = el.pos % s.q, i = el.pos / s.q;
        const Plane xp = x_plane(s, el.n, el.ch);
        const Range rows = adaptive_window(i, s.p, s.h);
        const Range cols = adaptive_window(j, s.q, s.w);
        double acc = 0;
        for (int64_t r = rows.lo; r < rows.hi; r++)
            for (int64_t c = cols.lo; c < cols.hi; c++)
                acc = __dadd_rn(acc, double(float(x[xp.base + (r * s.w + c) * xp.step])));
        y[o] = T(float(__ddiv_rn(acc, double((rows.hi - rows.lo) * (cols.hi - cols.lo)))));
    }
}

template <typename T>
__global__ void adaptive_avg_bwd_kernel(Pool2dShape s, T* dx, const T* dy, int64_t total) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const Element el = decode(e, s.c, s.h * s.w, s.channels_last);
        const int64_t c = el.pos % s.w, r = el.pos / s.w;
        const Range wi = adaptive_covering(r, s.p, s.h);
        const Range wj = adaptive_covering(c, s.q, s.w);
        const Plane dyp = y_plane(s, el.n, el.ch);
        float acc = float(dx[e]);
        for (int64_t i = wi.lo; i <= wi.hi; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = wj.lo; j <= wj.hi; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const float count = float((rows.hi - rows.lo) * (cols.hi - cols.lo));
                acc = __fadd_rn(acc, __fdiv_rn(float(dy[dyp.base + (i * s.q + j) * dyp.step]), count));
            }
        }
        dx[e] = T(acc);
    }
}

// The host side of every kernel, for T = float and bfloat16.
template <bool Relu, typename T>
void max_pool_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x) {
    const int64_t total = s.n * s.c * s.p * s.q;
    if (total == 0) return;
    max_pool_fwd_kernel<Relu><<<grid_for(total), kBlock, 0, stream()>>>(s, y, idx, x, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

// y: the pooled output, read by the fused relu + max pool only (null otherwise).
template <bool Relu, typename T>
void max_pool_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx, const T* y) {
    const int64_t total = s.n * s.c * s.h * s.w;
    if (total == 0 || s.p * s.q == 0) return;
    max_pool_bwd_kernel<Relu><<<grid_for(total), kBlock, 0, stream()>>>(s, dx, dy, idx, y, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void avg_pool_fwd(const Pool2dShape& s, T* y, const T* x) {
    const int64_t total = s.n * s.c * s.p * s.q;
    if (total == 0) return;
    const double inv = 1.0 / double(s.kh * s.kw);  // naive's factor
    avg_pool_fwd_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, y, x, inv, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void avg_pool_bwd(const Pool2dShape& s, T* dx, const T* dy) {
    const int64_t total = s.n * s.c * s.h * s.w;
    if (total == 0 || s.p * s.q == 0) return;
    const float inv = 1.0f / float(s.kh * s.kw);  // naive's factor
    avg_pool_bwd_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, dx, dy, inv, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void adaptive_avg_pool_fwd(const Pool2dShape& s, T* y, const T* x) {
    const int64_t total = s.n * s.c * s.p * s.q;
    if (total == 0) return;
    adaptive_avg_fwd_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, y, x, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void adaptive_avg_pool_bwd(const Pool2dShape& s, T* dx, const T* dy) {
    const int64_t total = s.n * s.c * s.h * s.w;
    if (total == 0 || s.p * s.q == 0) return;
    adaptive_avg_bwd_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, dx, dy, total);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) { max_pool_fwd<false>(s, y, idx, x); }
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx) {
    max_pool_bwd<false>(s, dx, dy, idx, static_cast<const float*>(nullptr));
}
void relu_max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    max_pool_fwd<true>(s, y, idx, x);
}
void relu_max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    max_pool_bwd<true>(s, dx, dy, idx, y);
}
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) { avg_pool_fwd(s, y, x); }
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) { avg_pool_bwd(s, dx, dy); }
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) { adaptive_avg_pool_fwd(s, y, x); }
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) { adaptive_avg_pool_bwd(s, dx, dy); }

void max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x) {
    max_pool_fwd<false>(s, y, idx, x);
}
void max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx) {
    max_pool_bwd<false>(s, dx, dy, idx, static_cast<const bfloat16*>(nullptr));
}
void relu_max_pool2d_fwd(const Pool2dShape& s, bfloat16* y, int32_t* idx, const bfloat16* x) {
    max_pool_fwd<true>(s, y, idx, x);
}
void relu_max_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy, const int32_t* idx,
                         const bfloat16* y) {
    max_pool_bwd<true>(s, dx, dy, idx, y);
}
void avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x) { avg_pool_fwd(s, y, x); }
void avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy) { avg_pool_bwd(s, dx, dy); }
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, bfloat16* y, const bfloat16* x) { adaptive_avg_pool_fwd(s, y, x); }
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, bfloat16* dx, const bfloat16* dy) {
    adaptive_avg_pool_bwd(s, dx, dy);
}

}  // namespace dyad::cuda
