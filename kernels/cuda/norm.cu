// Batch normalisation kernels, CUDA (contracts in kernels/norm.h). A channel's values are n planes of hw
// contiguous floats. Per-channel sums take two deterministic stages: the planes of each channel are cut
// into chunks (a cut that depends on the shape only), one block per (channel, chunk) adds its part in
// double (threads stride along each plane; warp shuffles, then shared memory, combine them in a fixed
// tree) and writes it to the workspace; then one thread per channel adds its chunks in order and
// computes the per-channel results. The statistics are one pass of double sums of x - K and
// (x - K)^2 around K = the channel's first value (var = (S2 - S1^2 / count) / count, exact enough in
// double), so they match naive's two-pass double statistics to double rounding. The elementwise passes
// take one block per plane and mirror naive's float expressions with __fmul_rn/__fadd_rn (no FMA
// contraction); the training dx is computed in double as naive does.
//
// channels_last ((n, hw, c): a channel's values are one column of an (n * hw) x c matrix) keeps the
// same two stages, the same double sums and the same per-channel kernels, with 2-D blocks so that
// consecutive threads read consecutive channels: a block is tx channels (a power of two, 32 when c >= 32,
// else the smallest one >= c) by ty = 256 / tx row lanes, so a warp reads whole stretches of memory (32
// channels of one row, or 32 / tx consecutive rows of c <= tx channels). For the sums the rows are cut
// into chunks (by the shape alone), one block per (tile of channels, chunk): lane (x, y) adds rows y,
// y + ty, ... of the chunk for channel x in double, then the ty lanes of a channel are combined by a
// fixed tree in shared memory and the result is the (channel, chunk) partial that the second stage adds
// in chunk order, as for NCHW. The elementwise passes take the same blocks, each thread computing its
// channel's constants once and walking a strided set of rows.
//
// bfloat16 activations: the kernels are templates on the type T of x, y, dy and dx (float or bfloat16).
// A value is widened to float on load (exact), every expression is the float path's, and each result is
// rounded once on store (an accumulated dx is widened, added to in float and rounded once). The
// statistics, running statistics, gamma, beta and their gradients stay float; float instantiations are
// the float kernels unchanged.
#include <algorithm>
#include <cmath>

#include "../norm.h"
#include "context.h"
#include "dyad/bfloat16.h"

namespace dyad::cuda {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// About this many blocks for the sums over all channels, each with at least kMinChunk values.
constexpr int64_t kTargetBlocks = 1024, kMinChunk = 4096;

// An activation widened to float (exact for bfloat16; the value itself for float).
template <typename T>
__device__ __forceinline__ float wide(T v) {
    return static_cast<float>(v);
}

// Sum of v over the block (blockDim.x a multiple of 32), returned to every thread; smem holds 32 values
// and is free to reuse afterwards.
__device__ double block_sum(double v, double* smem) {
    for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_down_sync(kFullMask, v, off);
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int warps = blockDim.x / kWarp;
        v = lane < warps ? smem[lane] : 0.0;
        for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_down_sync(kFullMask, v, off);
        if (lane == 0) smem[0] = v;
    }
    __syncthreads();
    const double r = smem[0];
    __syncthreads();
    return r;
}

// Threads per block when they stride along planes of hw values: a multiple of 32, at most 256.
int plane_block(int64_t hw) {
    const int64_t b = (hw + kWarp - 1) / kWarp * kWarp;
    return int(std::min<int64_t>(std::max<int64_t>(b, kWarp), kBlock));
}

unsigned capped_grid(int64_t blocks) { return unsigned(std::min<int64_t>(std::max<int64_t>(blocks, 1), 1 << 20)); }

// How the n planes of a channel are cut: chunks of `rows` planes (the last may be shorter).
struct Chunks {
    int64_t rows, count;
};
Chunks chunks_of(const BatchNormShape& s) {
    int64_t k = std::max<int64_t>(1, kTargetBlocks / std::max<int64_t>(s.c, 1));
    k = std::min(k, std::max<int64_t>(1, s.n * s.hw / kMinChunk));
    k = std::min(k, std::max<int64_t>(1, s.n));
    const int64_t rows = std::max<int64_t>(1, (s.n + k - 1) / k);
    return {rows, std::max<int64_t>(1, (s.n + rows - 1) / rows)};
}

// ---------------------------------------------------------------------------- sums
// partial[c * chunks + k] = (sum(a), sum(b)) over chunk k of channel c, where for the statistics
// (dy == null) a = x - K, b = (x - K)^2 with K = x of the channel's first element, and for the backward
// a = dy, b = dy * (x - mean[c]).
template <typename T>
__global__ void sums_kernel(BatchNormShape s, int64_t rows, int64_t chunks, const T* x, const T* dy, const float* mean,
                            double2* partial) {
    __shared__ double smem[kWarp];
    for (int64_t b = blockIdx.x; b < s.c * chunks; b += gridDim.x) {
        const int64_t c = b / chunks, k = b % chunks;
        const int64_t n0 = k * rows, n1 = n0 + rows < s.n ? n0 + rows : s.n;
        double s1 = 0.0, s2 = 0.0;
        if (dy == nullptr) {
            const double shift = s.n * s.hw > 0 ? double(wide(x[s.at(0, c, 0)])) : 0.0;
            for (int64_t n = n0; n < n1; n++) {
                const T* xs = x + (n * s.c + c) * s.hw;
                for (int64_t i = threadIdx.x; i < s.hw; i += blockDim.x) {
                    const double d = double(wide(xs[i])) - shift;
                    s1 += d;
                    s2 += d * d;
                }
            }
        } else {
            const double m = double(mean[c]);
            for (int64_t n = n0; n < n1; n++) {
                const int64_t off = (n * s.c + c) * s.hw;
                for (int64_t i = threadIdx.x; i < s.hw; i += blockDim.x) {
                    const double g = double(wide(dy[off + i]));
                    s1 += g;
                    s2 += g * (double(wide(x[off + i])) - m);
                }
            }
        }
        s1 = block_sum(s1, smem);
        s2 = block_sum(s2, smem);
        if (threadIdx.x == 0) partial[b] = make_double2(s1, s2);
    }
}

// ---------------------------------------------------------------------------- channels_last geometry
// Block shape and row chunks of the (n * hw) x c matrix (see the top of the file); depends on the shape
// only, so the summation order does too.
struct Nhwc {
    int tx, ty;          // channels, row lanes per block (tx * ty == kBlock)
    int64_t tiles;       // ceil(c / tx)
    int64_t rows;        // n * hw
    int64_t chunk_rows;  // rows per chunk of the sums (the last may be shorter)
    int64_t chunks;      // chunks of the sums
};
Nhwc nhwc_of(const BatchNormShape& s) {
    Nhwc g;
    g.tx = 1;
    while (g.tx < kWarp && g.tx < s.c) g.tx *= 2;
    g.ty = kBlock / g.tx;
    g.tiles = (s.c + g.tx - 1) / g.tx;
    g.rows = s.n * s.hw;
    // About kTargetBlocks blocks in all, each with at least kMinChunk values (tx of them per row).
    int64_t k = std::max<int64_t>(1, kTargetBlocks / std::max<int64_t>(g.tiles, 1));
    k = std::min(k, std::max<int64_t>(1, g.rows * g.tx / kMinChunk));
    k = std::min(k, std::max<int64_t>(1, g.rows));
    g.chunk_rows = std::max<int64_t>(1, (g.rows + k - 1) / k);
    g.chunks = std::max<int64_t>(1, (g.rows + g.chunk_rows - 1) / g.chunk_rows);
    return g;
}

// Grid of the elementwise passes: tiles of channels by blocks of rows, each thread taking about
// kRowsPerThread rows (grid-stride in both directions).
constexpr int64_t kRowsPerThread = 4;
dim3 nhwc_elementwise_grid(const Nhwc& g) {
    const int64_t row_blocks = (g.rows + g.ty * kRowsPerThread - 1) / (g.ty * kRowsPerThread);
    return dim3(capped_grid(g.tiles), unsigned(std::min<int64_t>(std::max<int64_t>(row_blocks, 1), 65535)));
}

// The channels_last form of sums_kernel: partial[c * chunks + blockIdx.y] = (sum(a), sum(b)) over rows
// [blockIdx.y * chunk_rows, + chunk_rows) of channel c, with a and b as there.
template <typename T>
__global__ void sums_nhwc_kernel(BatchNormShape s, int64_t tiles, int64_t chunk_rows, int64_t chunks, const T* x,
                                 const T* dy, const float* mean, double2* partial) {
    __shared__ double2 lanes[kBlock];  // [ty][tx]
    const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x;
    const int64_t rows = s.n * s.hw;
    const int64_t r0 = int64_t(blockIdx.y) * chunk_rows;
    const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t c = tile * bx + tx;
        double s1 = 0.0, s2 = 0.0;
        if (c < s.c) {
            if (dy == nullptr) {
                const double shift = rows > 0 ? double(wide(x[s.at(0, c, 0)])) : 0.0;
                for (int64_t r = r0 + ty; r < r1; r += blockDim.y) {
                    const double d = double(wide(x[r * s.c + c])) - shift;
                    s1 += d;
                    s2 += d * d;
                }
            } else {
                const double m = double(mean[c]);
                for (int64_t r = r0 + ty; r < r1; r += blockDim.y) {
                    const double g = double(wide(dy[r * s.c + c]));
                    s1 += g;
                    s2 += g * (double(wide(x[r * s.c + c])) - m);
                }
            }
        }
        lanes[ty * bx + tx] = make_double2(s1, s2);
        __syncthreads();
        // A fixed tree over the row lanes of each channel (blockDim.y is a power of two).
        for (int half = int(blockDim.y) / 2; half > 0; half /= 2) {
            if (ty < half) {
                const double2 o = lanes[(ty + half) * bx + tx];
                lanes[ty * bx + tx].x += o.x;
                lanes[ty * bx + tx].y += o.y;
            }
            __syncthreads();
        }
        if (ty == 0 && c < s.c) partial[c * chunks + blockIdx.y] = lanes[tx];
        __syncthreads();  // lanes is refilled for the next tile
    }
}

// Channel c's chunks added in order.
__device__ inline double2 channel_total(const double2* partial, int64_t c, int64_t chunks) {
    double2 t = make_double2(0.0, 0.0);
    for (int64_t k = 0; k < chunks; k++) {
        t.x += partial[c * chunks + k].x;
        t.y += partial[c * chunks + k].y;
    }
    return t;
}

// ---------------------------------------------------------------------------- training statistics
template <typename T>
__global__ void stats_kernel(BatchNormShape s, int64_t chunks, const double2* partial, const T* x, float* save_mean,
                             float* save_invstd, float* running_mean, float* running_var, float momentum, float eps) {
    const int64_t count = s.n * s.hw;
    for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < s.c; c += int64_t(gridDim.x) * blockDim.x) {
        const double2 t = channel_total(partial, c, chunks);
        double mean = 0.0, var = 0.0;
        if (count > 0) {
            const double shift = double(wide(x[s.at(0, c, 0)])), cnt = double(count);
            mean = shift + t.x / cnt;
            const double v = (t.y - t.x * t.x / cnt) / cnt;
            var = v < 0.0 ? 0.0 : v;  // rounding can leave a tiny negative; NaN stays NaN
        }
        save_mean[c] = float(mean);
        save_invstd[c] = float(__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, double(eps)))));
        // naive's running updates, term by term.
        const double mom = double(momentum), keep = 1.0 - mom;
        if (running_mean)
            running_mean[c] = float(__dadd_rn(__dmul_rn(keep, double(running_mean[c])), __dmul_rn(mom, mean)));
        if (running_var) {
            const double unbiased = count > 1 ? __ddiv_rn(__dmul_rn(var, double(count)), double(count - 1)) : var;
            running_var[c] = float(__dadd_rn(__dmul_rn(keep, double(running_var[c])), __dmul_rn(mom, unbiased)));
        }
    }
}

// ---------------------------------------------------------------------------- y = (x - m) * scale + shift
// One block per plane (n, c). m and invstd are the batch statistics (running == false) or the running
// mean and variance (running == true: invstd = 1 / sqrt(var + eps) as naive's eval forward).
template <typename T>
__global__ void normalise_kernel(BatchNormShape s, T* y, const T* x, const float* mean, const float* stat, bool running,
                                 const float* gamma, const float* beta, float eps) {
    for (int64_t plane = blockIdx.x; plane < s.n * s.c; plane += gridDim.x) {
        const int64_t c = plane % s.c;
        const float invstd =
            running ? float(__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(double(stat[c]), double(eps))))) : stat[c];
        const float m = mean[c];
        const float scale = gamma ? __fmul_rn(invstd, gamma[c]) : invstd;
        const float shift = beta ? beta[c] : 0.0f;
        const T* xs = x + plane * s.hw;
        T* ys = y + plane * s.hw;
        for (int64_t i = threadIdx.x; i < s.hw; i += blockDim.x)
            ys[i] = T(__fadd_rn(__fmul_rn(__fsub_rn(wide(xs[i]), m), scale), shift));
    }
}

// The channels_last form: thread (x, y) of block (bx, by) takes channel bx * tx + x and rows by * ty + y,
// + gridDim.y * ty, ...; the same float expressions.
template <typename T>
__global__ void normalise_nhwc_kernel(BatchNormShape s, int64_t tiles, T* y, const T* x, const float* mean,
                                      const float* stat, bool running, const float* gamma, const float* beta,
                                      float eps) {
    const int64_t rows = s.n * s.hw;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t c = tile * blockDim.x + threadIdx.x;
        if (c >= s.c) continue;
        const float invstd =
            running ? float(__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(double(stat[c]), double(eps))))) : stat[c];
        const float m = mean[c];
        const float scale = gamma ? __fmul_rn(invstd, gamma[c]) : invstd;
        const float shift = beta ? beta[c] : 0.0f;
        for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
             r += int64_t(gridDim.y) * blockDim.y) {
            const int64_t e = r * s.c + c;
            y[e] = T(__fadd_rn(__fmul_rn(__fsub_rn(wide(x[e]), m), scale), shift));
        }
    }
}

// ---------------------------------------------------------------------------- backward
// Per channel: dbeta += sum(dy), dgamma += sum(dy * xhat), and the training dx constants of naive:
// coef = (a, b, d) with dx = a * dy + b * (x - mean) + d.
__global__ void bwd_channel_kernel(BatchNormShape s, int64_t chunks, const double2* partial, const float* invstd,
                                   const float* gamma, float* dgamma, float* dbeta, double* coef) {
    const int64_t count = s.n * s.hw;
    for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < s.c; c += int64_t(gridDim.x) * blockDim.x) {
        const double2 t = channel_total(partial, c, chunks);
        const double istd = double(invstd[c]);
        const double sum_dy = t.x, sum_dy_xhat = t.y * istd;
        if (dbeta) dbeta[c] += float(sum_dy);
        if (dgamma) dgamma[c] += float(sum_dy_xhat);
        if (coef) {
            const double g = gamma ? double(gamma[c]) : 1.0;
            const double a = g * istd;
            coef[3 * c] = a;
            coef[3 * c + 1] = -a * istd * sum_dy_xhat / double(count);
            coef[3 * c + 2] = -a * sum_dy / double(count);
        }
    }
}

// dx += a * dy + b * (x - mean) + d in double (training, coef from bwd_channel_kernel), or
// dx += dy * float(gamma * invstd) in float (eval, coef == null). One block per plane.
template <typename T>
__global__ void bwd_dx_kernel(BatchNormShape s, T* dx, const T* dy, const T* x, const float* mean, const float* invstd,
                              const float* gamma, const double* coef) {
    for (int64_t plane = blockIdx.x; plane < s.n * s.c; plane += gridDim.x) {
        const int64_t c = plane % s.c, off = plane * s.hw;
        if (coef) {
            const double a = coef[3 * c], b = coef[3 * c + 1], d = coef[3 * c + 2], m = double(mean[c]);
            for (int64_t i = threadIdx.x; i < s.hw; i += blockDim.x)
                dx[off + i] = T(wide(dx[off + i]) +
                                float(a * double(wide(dy[off + i])) + b * (double(wide(x[off + i])) - m) + d));
        } else {
            const double g = gamma ? double(gamma[c]) : 1.0;
            const float scale = float(g * double(invstd[c]));
            for (int64_t i = threadIdx.x; i < s.hw; i += blockDim.x)
                dx[off + i] = T(__fadd_rn(wide(dx[off + i]), __fmul_rn(wide(dy[off + i]), scale)));
        }
    }
}

// The channels_last form of bwd_dx_kernel, threads mapped as in normalise_nhwc_kernel.
template <typename T>
__global__ void bwd_dx_nhwc_kernel(BatchNormShape s, int64_t tiles, T* dx, const T* dy, const T* x, const float* mean,
                                   const float* invstd, const float* gamma, const double* coef) {
    const int64_t rows = s.n * s.hw;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t c = tile * blockDim.x + threadIdx.x;
        if (c >= s.c) continue;
        const int64_t r_first = int64_t(blockIdx.y) * blockDim.y + threadIdx.y,
                      r_step = int64_t(gridDim.y) * blockDim.y;
        if (coef) {
            const double a = coef[3 * c], b = coef[3 * c + 1], d = coef[3 * c + 2], m = double(mean[c]);
            for (int64_t r = r_first; r < rows; r += r_step) {
                const int64_t e = r * s.c + c;
                dx[e] = T(wide(dx[e]) + float(a * double(wide(dy[e])) + b * (double(wide(x[e])) - m) + d));
            }
        } else {
            const double g = gamma ? double(gamma[c]) : 1.0;
            const float scale = float(g * double(invstd[c]));
            for (int64_t r = r_first; r < rows; r += r_step) {
                const int64_t e = r * s.c + c;
                dx[e] = T(__fadd_rn(wide(dx[e]), __fmul_rn(wide(dy[e]), scale)));
            }
        }
    }
}

// The first stage's results: partial (c * chunks double2, at the start of the workspace) and chunks.
struct Sums {
    double2* partial;
    int64_t chunks;
};

// The first stage of the per-channel sums in either layout, into the start of the workspace, which is
// sized for the partials plus `extra` bytes after them (the caller's, 16-byte aligned).
template <typename T>
Sums launch_sums(const BatchNormShape& s, const T* x, const T* dy, const float* mean, size_t extra) {
    if (s.channels_last) {
        const Nhwc g = nhwc_of(s);
        double2* partial = static_cast<double2*>(workspace(size_t(s.c * g.chunks) * sizeof(double2) + extra));
        const dim3 grid(capped_grid(g.tiles), unsigned(g.chunks));
        sums_nhwc_kernel<<<grid, dim3(g.tx, g.ty), 0, stream()>>>(s, g.tiles, g.chunk_rows, g.chunks, x, dy, mean,
                                                                  partial);
        DYAD_CUDA_CHECK_LAUNCH();
        return {partial, g.chunks};
    }
    const Chunks ch = chunks_of(s);
    double2* partial = static_cast<double2*>(workspace(size_t(s.c * ch.count) * sizeof(double2) + extra));
    sums_kernel<<<capped_grid(s.c * ch.count), plane_block(s.hw), 0, stream()>>>(s, ch.rows, ch.count, x, dy, mean,
                                                                                 partial);
    DYAD_CUDA_CHECK_LAUNCH();
    return {partial, ch.count};
}

// y = (x - m) * scale + shift in either layout (normalise_kernel's arguments).
template <typename T>
void launch_normalise(const BatchNormShape& s, T* y, const T* x, const float* mean, const float* stat, bool running,
                      const float* gamma, const float* beta, float eps) {
    if (s.channels_last) {
        const Nhwc g = nhwc_of(s);
        normalise_nhwc_kernel<<<nhwc_elementwise_grid(g), dim3(g.tx, g.ty), 0, stream()>>>(s, g.tiles, y, x, mean, stat,
                                                                                           running, gamma, beta, eps);
    } else {
        normalise_kernel<<<capped_grid(s.n * s.c), plane_block(s.hw), 0, stream()>>>(s, y, x, mean, stat, running,
                                                                                     gamma, beta, eps);
    }
    DYAD_CUDA_CHECK_LAUNCH();
}

// The three entry points for either activation type T.
template <typename T>
void batch_norm_fwd_train_impl(const BatchNormShape& s, T* y, float* save_mean, float* save_invstd, float* running_mean,
                               float* running_var, const T* x, const float* gamma, const float* beta, float momentum,
                               float eps) {
    if (s.c == 0) return;
    const Sums sums = launch_sums<T>(s, x, nullptr, nullptr, 0);
    stats_kernel<<<grid_for(s.c), kBlock, 0, stream()>>>(s, sums.chunks, sums.partial, x, save_mean, save_invstd,
                                                         running_mean, running_var, momentum, eps);
    DYAD_CUDA_CHECK_LAUNCH();
    if (s.n * s.hw == 0) return;
    launch_normalise(s, y, x, save_mean, save_invstd, false, gamma, beta, eps);
}

template <typename T>
void batch_norm_fwd_eval_impl(const BatchNormShape& s, T* y, const T* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps) {
    if (s.n * s.c * s.hw == 0) return;
    launch_normalise(s, y, x, running_mean, running_var, true, gamma, beta, eps);
}

template <typename T>
void batch_norm_bwd_impl(const BatchNormShape& s, bool training, T* dx, float* dgamma, float* dbeta, const T* dy,
                         const T* x, const float* mean, const float* invstd, const float* gamma) {
    if (s.c == 0) return;
    const bool need_sums = (training && dx) || dgamma || dbeta;
    double* coef = nullptr;
    if (need_sums) {
        const size_t coef_bytes = training && dx ? size_t(s.c) * 3 * sizeof(double) : 0;
        const Sums sums = launch_sums(s, x, dy, mean, coef_bytes);
        if (coef_bytes) coef = reinterpret_cast<double*>(sums.partial + s.c * sums.chunks);  // 16-byte aligned
        bwd_channel_kernel<<<grid_for(s.c), kBlock, 0, stream()>>>(s, sums.chunks, sums.partial, invstd, gamma, dgamma,
                                                                   dbeta, coef);
        DYAD_CUDA_CHECK_LAUNCH();
    }
    if (!dx || s.n * s.hw == 0) return;
    if (s.channels_last) {
        const Nhwc g = nhwc_of(s);
        bwd_dx_nhwc_kernel<<<nhwc_elementwise_grid(g), dim3(g.tx, g.ty), 0, stream()>>>(
            s, g.tiles, dx, dy, x, mean, invstd, gamma, training ? coef : nullptr);
    } else {
        bwd_dx_kernel<<<capped_grid(s.n * s.c), plane_block(s.hw), 0, stream()>>>(s, dx, dy, x, mean, invstd, gamma,
                                                                                  training ? coef : nullptr);
    }
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void batch_norm_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                          float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                          float eps) {
    batch_norm_fwd_train_impl(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps);
}

void batch_norm_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps) {
    batch_norm_fwd_eval_impl(s, y, x, running_mean, running_var, gamma, beta, eps);
}

void batch_norm_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
                    const float* x, const float* mean, const float* invstd, const float* gamma) {
    batch_norm_bwd_impl(s, training, dx, dgamma, dbeta, dy, x, mean, invstd, gamma);
}

void batch_norm_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                          float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                          const float* beta, float momentum, float eps) {
    batch_norm_fwd_train_impl(s, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, momentum, eps);
}

void batch_norm_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps) {
    batch_norm_fwd_eval_impl(s, y, x, running_mean, running_var, gamma, beta, eps);
}

void batch_norm_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                    const bfloat16* dy, const bfloat16* x, const float* mean, const float* invstd, const float* gamma) {
    batch_norm_bwd_impl(s, training, dx, dgamma, dbeta, dy, x, mean, invstd, gamma);
}

}  // namespace dyad::cuda
