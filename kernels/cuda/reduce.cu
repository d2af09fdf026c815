// Reduction kernels, CUDA (contracts in kernels/reduce.h). x is (outer, reduce, inner); sum, max and min share
// one set of kernels through a reducer (an accumulator, its identity and an associative combine):
// - inner == 1, rows of at most kShortRow: a warp per row, lanes striding along the row (coalesced),
//   then a warp-shuffle tree;
// - inner == 1, longer rows: a block per row, or, when there are too few rows to fill the GPU, per
//   (row, chunk of the row); threads stride along it, then a shuffle tree per warp and one across warps;
// - inner > 1: 32 x 8 blocks; the 32 threads of a row take 32 adjacent outputs (o, i) (coalesced reads
//   along i), the 8 rows of threads interleave along r, and the 8 partial results of each output are
//   combined in order through shared memory. With too few outputs to fill the GPU, r is also split
//   across blocks (gridDim.y).
// Split reductions write one partial per chunk to workspace() and a second pass (the warp-per-row or
// the column kernel) combines them in chunk order. The split depends only on the shape, and every
// combine happens in a fixed order, so results are the same from run to run. Sums accumulate in float.
// sum_fwd and sum_bwd also take bfloat16: the passes are templates on the element types they read and
// write, so a bfloat16 x is widened to float as the first pass loads it, partial results stay float, and
// each bfloat16 result (y, or dx's accumulated value) is rounded once as it is stored.
// max and min carry (value, index) pairs; the combine picks naive's answer from any two disjoint parts (a
// NaN wins, the first NaN among NaNs; otherwise the larger (smaller) value, the first index among equal
// ones), which makes the result independent of the order. The backward kernels take one thread per dx element
// (sum_bwd) or per output (max_bwd: each writes its own argmax slot) and add with naive's expression.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../elementwise.h"  // fill
#include "../reduce.h"
#include "context.h"

namespace dyad::cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = kBlock / kWarp;
constexpr int64_t kShortRow = 1024;      // rows up to this long take a warp each
constexpr int64_t kTargetBlocks = 1024;  // split r when the outputs alone give fewer blocks than this
constexpr int kColThreads = 32, kColRows = 8;

// Where a pass reads: x at an element offset, and for max the index that element stands for (idx null:
// the reduce position itself; otherwise the partial results' indices). T: the element type of x (float,
// or bfloat16 for a first pass over bfloat16 data, widened to float as it is loaded).
template <typename T>
struct Src {
    const T* x;
    const int32_t* idx;
};
// Where a pass writes: y[pos] (sum: times scale; max: skipped when null) and idx[pos] (max). T: the element
// type of y (float, or bfloat16 for the last pass of a bfloat16 result, rounded once as it is stored);
// partial results are always float.
template <typename T>
struct Dst {
    T* y;
    int32_t* idx;
    float scale;
};

struct SumOp {
    using Acc = float;
    __device__ static Acc identity() { return 0.0f; }
    __device__ static Acc combine(Acc a, Acc b) { return __fadd_rn(a, b); }
    __device__ static Acc shfl_down(Acc a, int d) { return __shfl_down_sync(kFullMask, a, d); }
    template <typename T>
    __device__ static Acc load(const Src<T>& s, int64_t off, int64_t) {
        return float(s.x[off]);
    }
    template <typename T>
    __device__ static void store(const Dst<T>& d, int64_t pos, Acc a) {
        d.y[pos] = T(float(double(a) * double(d.scale)));
    }
};

struct MaxAcc {
    float v;
    int32_t r;
};

// max (Min false) and min (Min true) carry (value, index) pairs.
template <bool Min>
struct ExtremeOp {
    using Acc = MaxAcc;
    // Loses to every element: a real -inf (+inf for min) ties with it and wins on the smaller index.
    __device__ static Acc identity() { return {Min ? INFINITY : -INFINITY, INT32_MAX}; }
    __device__ static Acc combine(Acc a, Acc b) {
        const bool an = isnan(a.v), bn = isnan(b.v);
        if (an || bn) {
            if (an && bn) return a.r <= b.r ? a : b;
            return an ? a : b;
        }
        if (Min ? a.v < b.v : a.v > b.v) return a;
        if (Min ? b.v < a.v : b.v > a.v) return b;
        return a.r <= b.r ? a : b;  // equal (-0 == +0 included): the first
    }
    __device__ static Acc shfl_down(Acc a, int d) {
        return {__shfl_down_sync(kFullMask, a.v, d), __shfl_down_sync(kFullMask, a.r, d)};
    }
    template <typename T>
    __device__ static Acc load(const Src<T>& s, int64_t off, int64_t r) {
        return {float(s.x[off]), s.idx ? s.idx[off] : int32_t(r)};
    }
    template <typename T>
    __device__ static void store(const Dst<T>& d, int64_t pos, Acc a) {
        if (d.y) d.y[pos] = T(a.v);
        d.idx[pos] = a.r;
    }
};
using MaxOp = ExtremeOp<false>;
using MinOp = ExtremeOp<true>;

// Lane 0 ends with the combine of the warp's 32 values (a fixed tree).
template <typename R>
__device__ __forceinline__ typename R::Acc warp_reduce(typename R::Acc a) {
#pragma unroll
    for (int d = kWarp / 2; d > 0; d /= 2) a = R::combine(a, R::shfl_down(a, d));
    return a;
}

// Thread 0 ends with the combine of the block's values. Every thread of the block must call it.
template <typename R>
__device__ __forceinline__ typename R::Acc block_reduce(typename R::Acc a, typename R::Acc* smem) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nwarps = blockDim.x / kWarp;
    a = warp_reduce<R>(a);
    if (lane == 0) smem[warp] = a;
    __syncthreads();
    if (warp == 0) {
        a = lane < nwarps ? smem[lane] : R::identity();
        a = warp_reduce<R>(a);
    }
    __syncthreads();  // smem is free again for the caller's next round
    return a;
}

// Rows of `len` contiguous elements, one warp each (kWarpsPerBlock per block): dst[row] = the row.
template <typename R, typename TI, typename TO>
__global__ void rows_warp_kernel(Src<TI> src, Dst<TO> dst, int64_t rows, int64_t len) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    for (int64_t row = blockIdx.x * int64_t(kWarpsPerBlock) + warp; row < rows;
         row += int64_t(gridDim.x) * kWarpsPerBlock) {
        typename R::Acc a = R::identity();
        const int64_t base = row * len;
        for (int64_t r = lane; r < len; r += kWarp) a = R::combine(a, R::load(src, base + r, r));
        a = warp_reduce<R>(a);
        if (lane == 0) R::store(dst, row, a);
    }
}

// Rows of `len` contiguous elements, each cut into `splits` chunks of `chunk` elements; one block per
// (row, chunk) task: dst[row * splits + part] = that chunk.
template <typename R, typename TI, typename TO>
__global__ void rows_block_kernel(Src<TI> src, Dst<TO> dst, int64_t rows, int64_t len, int64_t splits, int64_t chunk) {
    __shared__ typename R::Acc smem[kWarp];
    const int64_t tasks = rows * splits;
    for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
        const int64_t row = t / splits, part = t - row * splits;
        const int64_t lo = part * chunk, hi = lo + chunk < len ? lo + chunk : len;
        const int64_t base = row * len;
        typename R::Acc a = R::identity();
        for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) a = R::combine(a, R::load(src, base + r, r));
        a = block_reduce<R>(a, smem);
        if (threadIdx.x == 0) R::store(dst, t, a);
    }
}

// Columns: (outer, reduce, inner) with cols = outer * inner outputs, r cut into chunks of `chunk`, chunk
// blockIdx.y: dst[blockIdx.y * cols + c] = chunk blockIdx.y of output c. Block (kColThreads, kColRows).
template <typename R, typename TI, typename TO>
__global__ void cols_kernel(Src<TI> src, Dst<TO> dst, int64_t outer, int64_t reduce, int64_t inner, int64_t chunk) {
    __shared__ typename R::Acc smem[kColRows][kColThreads + 1];
    const int64_t cols = outer * inner;
    const int64_t part = blockIdx.y;
    const int64_t lo = part * chunk, hi = lo + chunk < reduce ? lo + chunk : reduce;
    for (int64_t tile = blockIdx.x; tile * kColThreads < cols; tile += gridDim.x) {
        const int64_t c = tile * kColThreads + threadIdx.x;
        typename R::Acc a = R::identity();
        if (c < cols) {
            const int64_t o = c / inner, i = c - o * inner;
            const int64_t base = o * reduce * inner + i;
            for (int64_t r = lo + threadIdx.y; r < hi; r += kColRows)
                a = R::combine(a, R::load(src, base + r * inner, r));
        }
        smem[threadIdx.y][threadIdx.x] = a;
        __syncthreads();
        if (threadIdx.y == 0 && c < cols) {
            a = smem[0][threadIdx.x];
#pragma unroll
            for (int k = 1; k < kColRows; k++) a = R::combine(a, smem[k][threadIdx.x]);
            R::store(dst, part * cols + c, a);
        }
        __syncthreads();
    }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Chunks of r for a reduction of `len` elements that `blocks` blocks run without splitting: enough for
// about kTargetBlocks blocks in all, none shorter than min_chunk. Returns the chunk length (len when
// there is no split).
int64_t chunk_for(int64_t blocks, int64_t len, int64_t min_chunk) {
    if (blocks >= kTargetBlocks || len <= min_chunk) return len;
    const int64_t splits = std::min(ceil_div(kTargetBlocks, blocks), ceil_div(len, min_chunk));
    return ceil_div(len, splits);
}

// The values and (max only) indices of `count` partial results in the workspace.
template <typename R>
Dst<float> partial_buffer(int64_t count) {
    constexpr bool is_max = std::is_same_v<R, MaxOp> || std::is_same_v<R, MinOp>;  // (value, index) pairs
    char* ws = static_cast<char*>(workspace(size_t(count) * (is_max ? 8 : 4)));
    return Dst<float>{reinterpret_cast<float*>(ws), is_max ? reinterpret_cast<int32_t*>(ws + count * 4) : nullptr,
                      1.0f};
}

// A first pass reads Src<TI>, a last pass writes Dst<TO>; partial results between the passes are float.
template <typename R, typename TI, typename TO>
void reduce_impl(const Src<TI>& src, const Dst<TO>& dst, const ReduceShape& s) {
    if (s.inner == 1) {
        if (s.reduce <= kShortRow) {
            rows_warp_kernel<R>
                <<<grid_for(s.outer, kWarpsPerBlock), kBlock, 0, stream()>>>(src, dst, s.outer, s.reduce);
            DYAD_CUDA_CHECK_LAUNCH();
            return;
        }
        const int64_t chunk = chunk_for(s.outer, s.reduce, int64_t(kBlock) * 16);
        const int64_t splits = ceil_div(s.reduce, chunk);
        const unsigned grid = grid_for(s.outer * splits, 1);
        if (splits == 1) {
            rows_block_kernel<R><<<grid, kBlock, 0, stream()>>>(src, dst, s.outer, s.reduce, 1, chunk);
            DYAD_CUDA_CHECK_LAUNCH();
            return;
        }
        const Dst<float> part = partial_buffer<R>(s.outer * splits);  // (outer, splits)
        rows_block_kernel<R><<<grid, kBlock, 0, stream()>>>(src, part, s.outer, s.reduce, splits, chunk);
        DYAD_CUDA_CHECK_LAUNCH();
        rows_warp_kernel<R><<<grid_for(s.outer, kWarpsPerBlock), kBlock, 0, stream()>>>(Src<float>{part.y, part.idx},
                                                                                        dst, s.outer, splits);
        DYAD_CUDA_CHECK_LAUNCH();
        return;
    }
    const int64_t cols = s.outer * s.inner;
    const int64_t tiles = ceil_div(cols, kColThreads);
    const int64_t chunk = chunk_for(tiles, s.reduce, int64_t(kColRows) * 8);
    const int64_t splits = ceil_div(s.reduce, chunk);
    const dim3 block(kColThreads, kColRows);
    const unsigned gx = grid_for(cols, kColThreads);
    if (splits == 1) {
        cols_kernel<R><<<dim3(gx, 1), block, 0, stream()>>>(src, dst, s.outer, s.reduce, s.inner, s.reduce);
        DYAD_CUDA_CHECK_LAUNCH();
        return;
    }
    const Dst<float> part = partial_buffer<R>(splits * cols);  // (splits, cols)
    cols_kernel<R><<<dim3(gx, unsigned(splits)), block, 0, stream()>>>(src, part, s.outer, s.reduce, s.inner, chunk);
    DYAD_CUDA_CHECK_LAUNCH();
    cols_kernel<R><<<dim3(gx, 1), block, 0, stream()>>>(Src<float>{part.y, part.idx}, dst, 1, splits, cols, splits);
    DYAD_CUDA_CHECK_LAUNCH();
}

// dx[o, r, i] += scale * dy[o, i]; I is uint32_t when every index fits (cheaper division).
template <typename I, typename T>
__global__ void sum_bwd_kernel(T* dx, const T* dy, I reduce, I inner, int64_t n, float scale) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const I q = I(e) / inner, i = I(e) - q * inner, o = q / reduce;
        dx[e] = T(__fadd_rn(float(dx[e]), __fmul_rn(scale, float(dy[int64_t(o) * int64_t(inner) + int64_t(i)]))));
    }
}

// sum_fwd and sum_bwd for T = float and bfloat16 (the reduction accumulates in float either way).
template <typename T>
void sum_fwd_any(T* y, const T* x, const ReduceShape& s, float scale) {
    const int64_t m = s.outer * s.inner;
    if (m == 0) return;
    if (s.reduce == 0) return fill(y, T(float(0.0 * double(scale))), m);  // naive's empty sum, scaled
    reduce_impl<SumOp>(Src<T>{x, nullptr}, Dst<T>{y, nullptr, scale}, s);
}

template <typename T>
void sum_bwd_any(T* dx, const T* dy, const ReduceShape& s, float scale) {
    const int64_t n = s.outer * s.reduce * s.inner;
    if (n == 0) return;
    if (n <= int64_t(INT32_MAX))
        sum_bwd_kernel<uint32_t>
            <<<grid_for(n), kBlock, 0, stream()>>>(dx, dy, uint32_t(s.reduce), uint32_t(s.inner), n, scale);
    else
        sum_bwd_kernel<int64_t><<<grid_for(n), kBlock, 0, stream()>>>(dx, dy, s.reduce, s.inner, n, scale);
    DYAD_CUDA_CHECK_LAUNCH();
}

// dx[o, idx[o, i], i] += dy[o, i], one thread per output: each writes its own element of dx.
__global__ void max_bwd_kernel(float* dx, const float* dy, const int32_t* idx, int64_t reduce, int64_t inner,
                               int64_t m) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < m; p += int64_t(gridDim.x) * blockDim.x) {
        const int64_t o = p / inner, i = p - o * inner;
        const int64_t e = (o * reduce + idx[p]) * inner + i;
        dx[e] = __fadd_rn(dx[e], dy[p]);
    }
}

}  // namespace

void sum_fwd(float* y, const float* x, const ReduceShape& s, float scale) { sum_fwd_any(y, x, s, scale); }
void sum_bwd(float* dx, const float* dy, const ReduceShape& s, float scale) { sum_bwd_any(dx, dy, s, scale); }
void sum_fwd(bfloat16* y, const bfloat16* x, const ReduceShape& s, float scale) { sum_fwd_any(y, x, s, scale); }
void sum_bwd(bfloat16* dx, const bfloat16* dy, const ReduceShape& s, float scale) { sum_bwd_any(dx, dy, s, scale); }

void max_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s) {
    if (s.outer * s.inner == 0) return;
    if (s.reduce < 1) throw CudaError("max_fwd: reduce must be >= 1");
    reduce_impl<MaxOp>(Src<float>{x, nullptr}, Dst<float>{y, idx, 1.0f}, s);
}

void min_fwd(float* y, int32_t* idx, const float* x, const ReduceShape& s) {
    if (s.outer * s.inner == 0) return;
    if (s.reduce < 1) throw CudaError("min_fwd: reduce must be >= 1");
    reduce_impl<MinOp>(Src<float>{x, nullptr}, Dst<float>{y, idx, 1.0f}, s);
}

void max_bwd(float* dx, const float* dy, const int32_t* idx, const ReduceShape& s) {
    const int64_t m = s.outer * s.inner;
    if (m == 0 || s.reduce == 0) return;
    max_bwd_kernel<<<grid_for(m), kBlock, 0, stream()>>>(dx, dy, idx, s.reduce, s.inner, m);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace dyad::cuda
