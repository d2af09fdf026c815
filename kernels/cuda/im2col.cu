// The building blocks of the im2col convolution on the GPU (kernels/cuda/conv.cpp puts them together
// with the GEMM): im2col, col2im, the bias (and ReLU) epilogue, the sum of per-image filter-gradient
// partials, and the bias gradient, each for NCHW operands and, with the shape's channels_last, NHWC ones.
//
// Column matrices. NCHW: per image (c*r*s, p*q), row (c, r, s), column the output position. NHWC: per
// image (p*q, r*s*c), row the output position, column (r, s, c): each row is the r*s runs of c contiguous
// channels of the input pixels the output's window covers, so a row gathers whole channel runs and the
// (k, r*s*c) KRSC weight is the other GEMM operand as it is stored.
//
// im2col: one thread per column-matrix element (grid-stride), consecutive threads along the column
// matrix's rows (NCHW: output positions, NHWC: channels), so the writes are coalesced and, in NHWC, so
// are the reads; taps in the padding write 0. col2im gathers: one thread per input element sums, in a
// fixed order (filter row, then column), the column entries its windows put there and adds the sum once,
// so no two threads write the same element and no atomics are needed; in NHWC consecutive threads take
// consecutive channels, whose column entries are adjacent. add_partials: one thread per filter-gradient
// element adds the images' partials in image order. bias_grad, NCHW: one block per filter, each thread
// sums a fixed strided subset of dy's (N, P, Q) plane, then a warp-shuffle tree and a tree over the warps.
// NHWC, where dy is (N*P*Q, K) and the bias gradient its column sums: blocks of 32 filters x 8 row
// lanes, the rows cut into chunks by the shape alone; each lane sums a strided subset of its chunk's
// rows, the lanes add in a fixed order, and the chunks' sums are added in chunk order. Either way the
// same order on every run.
//
// The bias epilogue and the bias gradient also serve the bfloat16 convolution (templates on the operand
// type T, float or bfloat16): values are widened to float on load, added in float, and each result is
// rounded once on store (dbias += the float sum, rounded once); partial sums stay float.
#include <algorithm>
#include <cstdint>

#include "../conv.h"
#include "context.h"
#include "dyad/bfloat16.h"

namespace dyad::cuda {

// Batched forms used by conv.cpp (declared there): `images` consecutive images of x / dx, and their column
// matrices one after another in col, each (c*r*s, p*q).
namespace lowering {
void im2col_images(const Conv2dShape& s, int64_t images, float* col, const float* x);
void col2im_images(const Conv2dShape& s, int64_t images, float* dx, const float* col);
void add_bias(float* y, const float* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu);
void bias_grad(float* dbias, const float* dy, int64_t n, int64_t k, int64_t pq, bool channels_last);
void add_partials(float* out, const float* parts, int64_t count, int64_t nparts);
void add_bias(bfloat16* y, const bfloat16* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu);
void bias_grad(bfloat16* dbias, const bfloat16* dy, int64_t n, int64_t k, int64_t pq, bool channels_last);
}  // namespace lowering

namespace {

// An operand widened to float (exact for bfloat16; the value itself for float).
template <typename T>
__device__ __forceinline__ float wide(T v) {
    return static_cast<float>(v);
}

// Row (c, r, t) and column (oh, ow) of col for element i of `images` stacked column matrices.
__global__ void im2col_kernel(Conv2dShape s, int64_t total, float* __restrict__ col, const float* __restrict__ x) {
    const int64_t pq = s.p * s.q, crs = s.c * s.r * s.s;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t pos = i % pq;
        const int64_t row = (i / pq) % crs;
        const int64_t img = i / (pq * crs);
        const int64_t oh = pos / s.q, ow = pos % s.q;
        const int64_t c = row / (s.r * s.s), rr = (row / s.s) % s.r, tt = row % s.s;
        const int64_t ih = oh * s.stride_h - s.pad_h + rr, iw = ow * s.stride_w - s.pad_w + tt;
        float v = 0.0f;
        if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) v = x[((img * s.c + c) * s.h + ih) * s.w + iw];
        col[i] = v;
    }
}

// The sum, over the taps (rr, tt) whose window covers input (ih, iw), of entry(rr, tt, oh, ow) with (oh, ow)
// the output the tap belongs to, in rr-then-tt order: col2im's gather in either layout.
template <typename Entry>
__device__ float sum_taps(const Conv2dShape& s, int64_t ih, int64_t iw, Entry entry) {
    float sum = 0.0f;
    for (int64_t rr = 0; rr < s.r; rr++) {
        const int64_t oh_s = ih + s.pad_h - rr;  // oh * stride_h; falls as rr grows
        if (oh_s < 0) break;
        if (oh_s % s.stride_h != 0) continue;
        const int64_t oh = oh_s / s.stride_h;
        if (oh >= s.p) continue;
        for (int64_t tt = 0; tt < s.s; tt++) {
            const int64_t ow_s = iw + s.pad_w - tt;
            if (ow_s < 0) break;
            if (ow_s % s.stride_w != 0) continue;
            const int64_t ow = ow_s / s.stride_w;
            if (ow >= s.q) continue;
            sum += entry(rr, tt, oh, ow);
        }
    }
    return sum;
}

// dx[img, c, ih, iw] += the sum over the taps (rr, tt) whose window covers (ih, iw): output row
// oh = (ih + pad_h - rr) / stride_h when that divides exactly and 0 <= oh < p, likewise ow.
__global__ void col2im_kernel(Conv2dShape s, int64_t total, float* __restrict__ dx, const float* __restrict__ col) {
    const int64_t pq = s.p * s.q, crs = s.c * s.r * s.s;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t iw = i % s.w;
        const int64_t ih = (i / s.w) % s.h;
        const int64_t c = (i / (s.w * s.h)) % s.c;
        const int64_t img = i / (s.w * s.h * s.c);
        const float* cimg = col + img * crs * pq;
        dx[i] += sum_taps(s, ih, iw, [&](int64_t rr, int64_t tt, int64_t oh, int64_t ow) {
            return cimg[((c * s.r + rr) * s.s + tt) * pq + oh * s.q + ow];
        });
    }
}

// NHWC: element i of `images` stacked (p*q, r*s*c) column matrices is image img, output position pos
// (oh, ow), tap (rr, tt) and channel c, c fastest: x[img, ih, iw, c] or 0 in the padding.
__global__ void im2col_nhwc_kernel(Conv2dShape s, int64_t total, float* __restrict__ col, const float* __restrict__ x) {
    const int64_t rsc = s.r * s.s * s.c, pq = s.p * s.q;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t c = i % s.c;
        const int64_t tap = (i / s.c) % (s.r * s.s);
        const int64_t pos = (i / rsc) % pq;
        const int64_t img = i / (rsc * pq);
        const int64_t rr = tap / s.s, tt = tap % s.s, oh = pos / s.q, ow = pos % s.q;
        const int64_t ih = oh * s.stride_h - s.pad_h + rr, iw = ow * s.stride_w - s.pad_w + tt;
        float v = 0.0f;
        if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) v = x[((img * s.h + ih) * s.w + iw) * s.c + c];
        col[i] = v;
    }
}

// NHWC: dx[img, ih, iw, c] += the column entries of the taps (rr, tt) whose window covers (ih, iw), in
// the NCHW kernel's order; the entry of output (oh, ow) is row oh * q + ow, column (rr * S + tt) * C + c
// of image img's column matrix.
__global__ void col2im_nhwc_kernel(Conv2dShape s, int64_t total, float* __restrict__ dx,
                                   const float* __restrict__ col) {
    const int64_t rsc = s.r * s.s * s.c, pq = s.p * s.q;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t c = i % s.c;
        const int64_t iw = (i / s.c) % s.w;
        const int64_t ih = (i / (s.c * s.w)) % s.h;
        const int64_t img = i / (s.c * s.w * s.h);
        const float* cimg = col + img * pq * rsc;
        dx[i] += sum_taps(s, ih, iw, [&](int64_t rr, int64_t tt, int64_t oh, int64_t ow) {
            return cimg[(oh * s.q + ow) * rsc + (rr * s.s + tt) * s.c + c];
        });
    }
}

// y[img, k, pos] (NCHW; NHWC: y[img, pos, k]) = y + bias[k] (bias may be null), then max(., 0) when Relu
// (NaN stays NaN, as relu_fwd).
template <typename T, bool Relu>
__global__ void add_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t total, int64_t k, int64_t pq,
                                bool channels_last) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        float v = wide(y[i]);
        if (bias) v += wide(bias[channels_last ? i % k : (i / pq) % k]);
        if (Relu) v = v < 0.0f ? 0.0f : v;
        y[i] = T(v);
    }
}

// out[i] += parts[0][i] + parts[1][i] + ... (nparts buffers of count floats), summed in that order.
__global__ void add_partials_kernel(float* __restrict__ out, const float* __restrict__ parts, int64_t count,
                                    int64_t nparts) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
        float sum = parts[i];
        for (int64_t p = 1; p < nparts; p++) sum += parts[p * count + i];
        out[i] += sum;
    }
}

constexpr int kReduceThreads = 256;

// Block kk: dbias[kk] += sum over img, pos of dy[img, kk, pos]. Thread t sums positions t, t + 256, ...
// of every image in turn; then the block tree.
template <typename T>
__global__ void bias_grad_kernel(T* __restrict__ dbias, const T* __restrict__ dy, int64_t n, int64_t k, int64_t pq) {
    const int64_t kk = blockIdx.x;
    float sum = 0.0f;
    for (int64_t img = 0; img < n; img++) {
        const T* plane = dy + (img * k + kk) * pq;
        for (int64_t pos = threadIdx.x; pos < pq; pos += kReduceThreads) sum += wide(plane[pos]);
    }
    // Warp tree, then the warps' sums in shared memory, reduced by the first warp the same way.
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, off);
    __shared__ float warp_sums[kReduceThreads / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        sum = lane < kReduceThreads / 32 ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, off);
        if (lane == 0) dbias[kk] = T(wide(dbias[kk]) + sum);
    }
}

// NHWC bias gradient: dy is (rows, k) with rows = n*p*q, and dbias its column sums. Block (32, 8) covers
// filters [32 * blockIdx.x, + 32) and the rows [blockIdx.y * chunk_rows, + chunk_rows): lane (x, y) sums
// rows y, y + 8, ... of the chunk for filter x (a warp reads 32 adjacent filters of one row: coalesced),
// then lane y = 0 adds the 8 lane sums in order. One chunk: dbias += that; several: the chunk's sum goes
// to partial[chunk * k + filter], which bias_grad_chunks_kernel adds up in chunk order.
constexpr int kBiasTileX = 32, kBiasTileY = 8;

template <typename T>
__global__ void bias_grad_nhwc_kernel(T* __restrict__ dbias, float* __restrict__ partial, const T* __restrict__ dy,
                                      int64_t rows, int64_t k, int64_t chunk_rows) {
    __shared__ float lanes[kBiasTileY][kBiasTileX];
    const int64_t kk = int64_t(blockIdx.x) * kBiasTileX + threadIdx.x;
    const int64_t r0 = int64_t(blockIdx.y) * chunk_rows;
    const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
    float sum = 0.0f;
    if (kk < k)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += kBiasTileY) sum += wide(dy[r * k + kk]);
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && kk < k) {
        float total = lanes[0][threadIdx.x];
        for (int y = 1; y < kBiasTileY; y++) total += lanes[y][threadIdx.x];
        if (partial)
            partial[int64_t(blockIdx.y) * k + kk] = total;
        else
            dbias[kk] = T(wide(dbias[kk]) + total);
    }
}

// dbias[kk] += partial[0][kk] + partial[1][kk] + ..., in chunk order.
template <typename T>
__global__ void bias_grad_chunks_kernel(T* __restrict__ dbias, const float* __restrict__ partial, int64_t k,
                                        int64_t chunks) {
    for (int64_t kk = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; kk < k; kk += int64_t(gridDim.x) * blockDim.x) {
        float total = partial[kk];
        for (int64_t c = 1; c < chunks; c++) total += partial[c * k + kk];
        dbias[kk] = T(wide(dbias[kk]) + total);
    }
}

// add_bias and bias_grad (below) for either operand type.
template <typename T>
void add_bias_t(T* y, const T* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu) {
    const int64_t total = n * k * pq;
    if (total <= 0 || (!bias && !relu)) return;
    if (relu)
        add_bias_kernel<T, true><<<grid_for(total), kBlock, 0, stream()>>>(y, bias, total, k, pq, channels_last);
    else
        add_bias_kernel<T, false><<<grid_for(total), kBlock, 0, stream()>>>(y, bias, total, k, pq, channels_last);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void bias_grad_t(T* dbias, const T* dy, int64_t n, int64_t k, int64_t pq, bool channels_last) {
    if (k <= 0) return;
    if (!channels_last) {
        if (k > int64_t(INT32_MAX))
            throw CudaError(::dyad::detail::str("conv2d bias gradient: too many filters (", k, ")"));
        bias_grad_kernel<<<unsigned(k), kReduceThreads, 0, stream()>>>(dbias, dy, n, k, pq);
        DYAD_CUDA_CHECK_LAUNCH();
        return;
    }
    const int64_t rows = n * pq;
    if (rows <= 0) return;  // dbias += 0
    const int64_t tiles = (k + kBiasTileX - 1) / kBiasTileX;
    if (tiles > int64_t(INT32_MAX))
        throw CudaError(::dyad::detail::str("conv2d bias gradient: too many filters (", k, ")"));
    // Chunks of rows so that there are about 256 blocks, each with at least 256 rows; the cut depends on
    // the shape alone, so the summation order is the same on every run.
    int64_t chunks = std::max<int64_t>(1, 256 / tiles);
    chunks = std::min(chunks, std::max<int64_t>(1, rows / 256));
    const int64_t chunk_rows = (rows + chunks - 1) / chunks;
    chunks = (rows + chunk_rows - 1) / chunk_rows;
    float* partial = chunks > 1 ? static_cast<float*>(workspace(size_t(chunks * k) * sizeof(float))) : nullptr;
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
    const dim3 block(kBiasTileX, kBiasTileY);
    bias_grad_nhwc_kernel<<<grid, block, 0, stream()>>>(dbias, partial, dy, rows, k, chunk_rows);
    DYAD_CUDA_CHECK_LAUNCH();
    if (partial) {
        bias_grad_chunks_kernel<<<grid_for(k), kBlock, 0, stream()>>>(dbias, partial, k, chunks);
        DYAD_CUDA_CHECK_LAUNCH();
    }
}

}  // namespace

namespace lowering {

void im2col_images(const Conv2dShape& s, int64_t images, float* col, const float* x) {
    const int64_t total = images * s.c * s.r * s.s * s.p * s.q;
    if (total <= 0) return;
    if (s.channels_last)
        im2col_nhwc_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, total, col, x);
    else
        im2col_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, total, col, x);
    DYAD_CUDA_CHECK_LAUNCH();
}

void col2im_images(const Conv2dShape& s, int64_t images, float* dx, const float* col) {
    const int64_t total = images * s.c * s.h * s.w;
    if (total <= 0) return;
    if (s.channels_last)
        col2im_nhwc_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, total, dx, col);
    else
        col2im_kernel<<<grid_for(total), kBlock, 0, stream()>>>(s, total, dx, col);
    DYAD_CUDA_CHECK_LAUNCH();
}

void add_bias(float* y, const float* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu) {
    add_bias_t(y, bias, n, k, pq, channels_last, relu);
}

void add_bias(bfloat16* y, const bfloat16* bias, int64_t n, int64_t k, int64_t pq, bool channels_last, bool relu) {
    add_bias_t(y, bias, n, k, pq, channels_last, relu);
}

void bias_grad(float* dbias, const float* dy, int64_t n, int64_t k, int64_t pq, bool channels_last) {
    bias_grad_t(dbias, dy, n, k, pq, channels_last);
}

void bias_grad(bfloat16* dbias, const bfloat16* dy, int64_t n, int64_t k, int64_t pq, bool channels_last) {
    bias_grad_t(dbias, dy, n, k, pq, channels_last);
}

void add_partials(float* out, const float* parts, int64_t count, int64_t nparts) {
    if (count <= 0 || nparts <= 0) return;
    add_partials_kernel<<<grid_for(count), kBlock, 0, stream()>>>(out, parts, count, nparts);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace lowering

void im2col(const Conv2dShape& s, float* col, const float* x) { lowering::im2col_images(s, 1, col, x); }

void col2im(const Conv2dShape& s, float* dx, const float* col) { lowering::col2im_images(s, 1, dx, col); }

}  // namespace dyad::cuda
