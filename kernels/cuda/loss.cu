// Softmax, log-softmax and cross-entropy kernels, CUDA (contracts in kernels/loss.h). Rows along the last
// dim (inner == 1) take one block each: the threads stride over the row and combine their maxima and
// sums with warp shuffles and a shared-memory step (a fixed tree, so results are deterministic). Rows
// along another dim (inner > 1) take one thread per (outer, inner) column, which walks the column in
// order; neighbouring threads read neighbouring addresses. Arithmetic is float with CUDA's accurate
// expf/logf (naive works in double), so results differ from naive by rounding only. cross_entropy_fwd
// writes each row's loss to the workspace and one block adds them up in double, in a fixed order; a
// label outside [0, c) is recorded as a fault (thrown by the host at the next synchronisation) and gives
// that row a NaN loss without reading out of bounds.
#include <cmath>

#include "../loss.h"
#include "context.h"

namespace dyad::cuda {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
    template <typename T>
    __device__ T operator()(T a, T b) const {
        return a + b;
    }
};

// Combines v over the block (blockDim.x a multiple of 32, at most 1024) and returns the result to every
// thread. `identity` fills the missing warps. Uses `smem` (32 values) and leaves it free to reuse.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity, T* smem) {
    for (int off = kWarp / 2; off > 0; off /= 2) v = op(v, __shfl_down_sync(kFullMask, v, off));
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int warps = blockDim.x / kWarp;
        v = lane < warps ? smem[lane] : identity;
        for (int off = kWarp / 2; off > 0; off /= 2) v = op(v, __shfl_down_sync(kFullMask, v, off));
        if (lane == 0) smem[0] = v;
    }
    __syncthreads();
    const T r = smem[0];
    __syncthreads();
    return r;
}

// Threads per block for rows of `len`: a multiple of 32, at most 256.
int row_block(int64_t len) {
    const int64_t b = (len + kWarp - 1) / kWarp * kWarp;
    return int(b < kWarp ? kWarp : b > kBlock ? kBlock : b);
}

// Blocks for `rows` rows, one block per row (capped; the kernels loop over the rest).
unsigned row_grid(int64_t rows) { return unsigned(rows < (int64_t(1) << 20) ? rows : (int64_t(1) << 20)); }

// ---------------------------------------------------------------------------- rows (inner == 1)
// y = softmax (log_softmax when `log`) of each row of length len.
__global__ void softmax_rows_kernel(float* y, const float* x, int64_t rows, int64_t len, bool is_log) {
    __shared__ float smem[kWarp];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * len;
        float* yr = y + row * len;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) m = fmaxf(m, xr[j]);
        m = block_reduce(m, MaxOp(), -INFINITY, smem);
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += expf(xr[j] - m);
        s = block_reduce(s, SumOp(), 0.0f, smem);
        if (is_log) {
            const float ls = logf(s);
            for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yr[j] = (xr[j] - m) - ls;
        } else {
            for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yr[j] = expf(xr[j] - m) / s;
        }
    }
}

// dx += y * (dy - sum(dy * y)) (softmax), or dx += dy - exp(y) * sum(dy) (log_softmax), per row. The sum
// is taken in double, as on the CPU: the results cancel against it, so its rounding would dominate them.
__global__ void softmax_bwd_rows_kernel(float* dx, const float* dy, const float* y, int64_t rows, int64_t len,
                                        bool is_log) {
    __shared__ double smem[kWarp];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const int64_t off = row * len;
        double acc = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
            acc += is_log ? double(dy[off + j]) : double(dy[off + j]) * double(y[off + j]);
        const double s = block_reduce(acc, SumOp(), 0.0, smem);
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
            const int64_t k = off + j;
            dx[k] += is_log ? float(double(dy[k]) - exp(double(y[k])) * s) : y[k] * (dy[k] - float(s));
        }
    }
}

// ---------------------------------------------------------------------------- columns (inner > 1)
// One thread per (o, i): the column x[o * reduce * inner + r * inner + i], r < reduce.
__global__ void softmax_cols_kernel(ReduceShape s, float* y, const float* x, bool is_log) {
    const int64_t cols = s.outer * s.inner;
    for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < cols; t += int64_t(gridDim.x) * blockDim.x) {
        const int64_t base = t / s.inner * s.reduce * s.inner + t % s.inner;
        float m = -INFINITY;
        for (int64_t r = 0; r < s.reduce; r++) m = fmaxf(m, x[base + r * s.inner]);
        float sum = 0.0f;
        for (int64_t r = 0; r < s.reduce; r++) sum += expf(x[base + r * s.inner] - m);
        if (is_log) {
            const float ls = logf(sum);
            for (int64_t r = 0; r < s.reduce; r++) y[base + r * s.inner] = (x[base + r * s.inner] - m) - ls;
        } else {
            for (int64_t r = 0; r < s.reduce; r++) y[base + r * s.inner] = expf(x[base + r * s.inner] - m) / sum;
        }
    }
}

__global__ void softmax_bwd_cols_kernel(ReduceShape s, float* dx, const float* dy, const float* y, bool is_log) {
    const int64_t cols = s.outer * s.inner;
    for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < cols; t += int64_t(gridDim.x) * blockDim.x) {
        const int64_t base = t / s.inner * s.reduce * s.inner + t % s.inner;
        double acc = 0.0;
        for (int64_t r = 0; r < s.reduce; r++) {
            const int64_t k = base + r * s.inner;
            acc += is_log ? double(dy[k]) : double(dy[k]) * double(y[k]);
        }
        for (int64_t r = 0; r < s.reduce; r++) {
            const int64_t k = base + r * s.inner;
            dx[k] += is_log ? float(double(dy[k]) - exp(double(y[k])) * acc) : y[k] * (dy[k] - float(acc));
        }
    }
}

void softmax_fwd_any(const ReduceShape& s, float* y, const float* x, bool is_log) {
    if (s.outer * s.reduce * s.inner == 0) return;
    if (s.inner == 1) {
        softmax_rows_kernel<<<row_grid(s.outer), row_block(s.reduce), 0, stream()>>>(y, x, s.outer, s.reduce, is_log);
    } else {
        softmax_cols_kernel<<<grid_for(s.outer * s.inner), kBlock, 0, stream()>>>(s, y, x, is_log);
    }
    DYAD_CUDA_CHECK_LAUNCH();
}

void softmax_bwd_any(const ReduceShape& s, float* dx, const float* dy, const float* y, bool is_log) {
    if (s.outer * s.reduce * s.inner == 0) return;
    if (s.inner == 1) {
        softmax_bwd_rows_kernel<<<row_grid(s.outer), row_block(s.reduce), 0, stream()>>>(dx, dy, y, s.outer, s.reduce,
                                                                                         is_log);
    } else {
        softmax_bwd_cols_kernel<<<grid_for(s.outer * s.inner), kBlock, 0, stream()>>>(s, dx, dy, y, is_log);
    }
    DYAD_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------- cross-entropy
// Per row: lse = m + log(sum exp(x - m)) and the row's loss, written as
// log(sum exp(x - m)) - (1 - eps) * (x[label] - m) - eps / c * sum(x - m), which equals naive's
// lse - (1 - eps) * x[label] - eps / c * sum(x) but keeps the terms small for huge logits.
template <typename L>
__global__ void cross_entropy_rows_kernel(int64_t n, int64_t c, float* row_loss, float* lse, const float* logits,
                                          const L* labels, float eps, FaultRecord* fault) {
    __shared__ float smem[kWarp];
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float* x = logits + row * c;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, x[j]);
        m = block_reduce(m, MaxOp(), -INFINITY, smem);
        float se = 0.0f, sx = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            se += expf(x[j] - m);
            sx += x[j] - m;
        }
        se = block_reduce(se, SumOp(), 0.0f, smem);
        if (eps != 0.0f) sx = block_reduce(sx, SumOp(), 0.0f, smem);  // eps is the same in every thread
        if (threadIdx.x == 0) {
            const float ls = logf(se);
            lse[row] = m + ls;
            const int64_t label = int64_t(labels[row]);
            if (label < 0 || label >= c) {
                report_fault(fault, Fault::label_out_of_range, label, row, c);
                row_loss[row] = NAN;
            } else {
                float v = ls - (1.0f - eps) * (x[label] - m);
                if (eps != 0.0f) v -= eps / float(c) * sx;
                row_loss[row] = v;
            }
        }
    }
}

// loss[0] = mean of row_loss[0, n): one block; thread t adds rows t, t + blockDim.x, ... in double, then
// the block's tree. The order depends on n only.
__global__ void mean_kernel(float* loss, const float* row_loss, int64_t n) {
    __shared__ double smem[kWarp];
    double acc = 0.0;
    for (int64_t r = threadIdx.x; r < n; r += blockDim.x) acc += double(row_loss[r]);
    acc = block_reduce(acc, SumOp(), 0.0, smem);
    if (threadIdx.x == 0) loss[0] = float(acc / double(n));
}

// dlogits += dloss[0] / n * (exp(x - lse) - q), q = (1 - eps) * onehot(label) + eps / c; one thread per
// element. A bad label (reported by the forward) only means no element gets the one-hot term.
template <typename L>
__global__ void cross_entropy_bwd_kernel(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits,
                                         const float* lse, const L* labels, float eps) {
    const int64_t total = n * c;
    const float g = dloss[0] / float(n), smooth = eps / float(c);
    for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
        const int64_t row = k / c, j = k % c;
        const float q = (j == int64_t(labels[row]) ? 1.0f - eps : 0.0f) + smooth;
        dlogits[k] += g * (expf(logits[k] - lse[row]) - q);
    }
}

}  // namespace

void softmax_fwd(const ReduceShape& s, float* y, const float* x) { softmax_fwd_any(s, y, x, false); }
void softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y) {
    softmax_bwd_any(s, dx, dy, y, false);
}
void log_softmax_fwd(const ReduceShape& s, float* y, const float* x) { softmax_fwd_any(s, y, x, true); }
void log_softmax_bwd(const ReduceShape& s, float* dx, const float* dy, const float* y) {
    softmax_bwd_any(s, dx, dy, y, true);
}

namespace {

// L: the label type (int32_t or int64_t); the public overloads below share these.
template <typename L>
void cross_entropy_fwd_impl(int64_t n, int64_t c, float* loss, float* lse, const float* logits, const L* labels,
                            float eps) {
    if (n == 0 || c == 0) return;
    float* row_loss = static_cast<float*>(workspace(size_t(n) * sizeof(float)));
    cross_entropy_rows_kernel<<<row_grid(n), row_block(c), 0, stream()>>>(n, c, row_loss, lse, logits, labels, eps,
                                                                          fault_record());
    DYAD_CUDA_CHECK_LAUNCH();
    mean_kernel<<<1, kBlock, 0, stream()>>>(loss, row_loss, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename L>
void cross_entropy_bwd_impl(int64_t n, int64_t c, float* dlogits, const float* dloss, const float* logits,
                            const float* lse, const L* labels, float eps) {
    if (n == 0 || c == 0) return;
    cross_entropy_bwd_kernel<<<grid_for(n * c), kBlock, 0, stream()>>>(n, c, dlogits, dloss, logits, lse, labels, eps);
    DYAD_CUDA_CHECK_LAUNCH();
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

}  // namespace dyad::cuda
