// Optimizer and regularisation kernels, CUDA. Every element is computed with naive's float expression in
// naive's order, spelled with correctly rounded intrinsics (__fmul_rn, __fadd_rn, __fsub_rn) so nvcc
// contracts nothing into an FMA: results equal naive/optim.cpp bit for bit. Scalars are rounded to
// float once on the host exactly as naive rounds them.
//
// Elementwise kernels (sgd_step, dropout, isfinite) are grid-stride loops over groups of four elements:
// 16-byte float4 loads and stores (4-byte uchar4 for masks) when every pointer is aligned, then a scalar
// loop for the tail (or for everything when a pointer is not aligned). dropout also takes bfloat16 (a
// template on the element type): the scalar loop only, each element widened to float, computed with the
// float expression and rounded once on store. sgd_step_multi packs up to kMultiTensors tensors into one
// kernel parameter struct and gives each tensor ceil(n / kChunk) blocks;
// a block finds its (tensor, chunk) pair in the struct's prefix of block counts. count_nonfinite counts
// per thread, reduces per block with warp shuffles, writes one count per block to the workspace and sums
// those in a second one-block kernel (a fixed order: the same count every run). adam_step_multi packs
// tensors as sgd_step_multi does; grad_norm_multi writes one double partial per (tensor, piece) block to
// the workspace and a one-block kernel combines them in order, so the norm stays on the GPU and has the
// same bits every run; grad_scale_multi reads it there.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../optim.h"
#include "context.h"

namespace dyad::cuda {

namespace {

// ---------------------------------------------------------------------------- SGD
// SgdParams as naive uses it: the rates rounded to float once and the modes as flags.
struct SgdScalars {
    float lr, mom, damp, wd;
    bool decay, momentum, first, nesterov;
};

SgdScalars sgd_scalars(const SgdParams& p) {
    SgdScalars s;
    s.lr = float(p.lr);
    s.mom = float(p.momentum);
    s.damp = float(1.0 - p.dampening);
    s.wd = float(p.weight_decay);
    s.decay = p.weight_decay != 0.0;
    s.momentum = p.momentum != 0.0;
    s.first = p.first_step;
    s.nesterov = p.nesterov;
    return s;
}

// One element of naive::sgd_step<float>. buf is read (unless first) and written only with momentum.
__device__ __forceinline__ float sgd_element(float param, float grad, float& buf, const SgdScalars& s) {
    float g = grad;
    if (s.decay) g = __fadd_rn(g, __fmul_rn(s.wd, param));
    if (s.momentum) {
        const float b = s.first ? g : __fadd_rn(__fmul_rn(s.mom, buf), __fmul_rn(s.damp, g));
        buf = b;
        g = s.nesterov ? __fadd_rn(g, __fmul_rn(s.mom, b)) : b;
    }
    return __fsub_rn(param, __fmul_rn(s.lr, g));
}

__device__ __forceinline__ void sgd_scalar(int64_t i, float* param, const float* grad, float* buf,
                                           const SgdScalars& s) {
    float b = s.momentum && !s.first ? buf[i] : 0.0f;
    param[i] = sgd_element(param[i], grad[i], b, s);
    if (s.momentum) buf[i] = b;
}

// Elements 4v .. 4v + 3 with vector loads and stores; the pointers are 16-byte aligned.
__device__ __forceinline__ void sgd_vector(int64_t v, float* param, const float* grad, float* buf,
                                           const SgdScalars& s) {
    float4 p = reinterpret_cast<const float4*>(param)[v];
    const float4 g = reinterpret_cast<const float4*>(grad)[v];
    float4 b = s.momentum && !s.first ? reinterpret_cast<const float4*>(buf)[v] : make_float4(0, 0, 0, 0);
    p.x = sgd_element(p.x, g.x, b.x, s);
    p.y = sgd_element(p.y, g.y, b.y, s);
    p.z = sgd_element(p.z, g.z, b.z, s);
    p.w = sgd_element(p.w, g.w, b.w, s);
    reinterpret_cast<float4*>(param)[v] = p;
    if (s.momentum) reinterpret_cast<float4*>(buf)[v] = b;
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

__device__ __forceinline__ bool sgd_aligned(const float* param, const float* grad, const float* buf,
                                            const SgdScalars& s) {
    return aligned16(param) && aligned16(grad) && (!s.momentum || aligned16(buf));
}

__global__ void sgd_step_kernel(int64_t n, float* __restrict__ param, const float* __restrict__ grad,
                                float* __restrict__ buf, SgdScalars s) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t nvec = sgd_aligned(param, grad, buf, s) ? n / 4 : 0;
    for (int64_t v = start; v < nvec; v += stride) sgd_vector(v, param, grad, buf, s);
    for (int64_t i = 4 * nvec + start; i < n; i += stride) sgd_scalar(i, param, grad, buf, s);
}

// sgd_step_multi: up to kMultiTensors tensors per launch. The struct is a kernel parameter (by value,
// in the constant bank): 48 * 32 + 49 * 8 + 24 bytes, about 2 KB, well under the 4 KB parameter limit.
constexpr int kMultiTensors = 48;
// Elements per block: 256 threads, two float4 groups each.
constexpr int64_t kChunk = 2048;

struct SgdMultiArgs {
    float* param[kMultiTensors];
    const float* grad[kMultiTensors];
    float* buf[kMultiTensors];
    int64_t n[kMultiTensors];
    // Blocks of tensors [0, t) for t in [0, count]: tensor t owns blocks [block_start[t], block_start[t + 1]).
    int64_t block_start[kMultiTensors + 1];
    int count;
    SgdScalars s;
};
static_assert(sizeof(SgdMultiArgs) < 2200, "the parameter struct must stay well under 4 KB");

__global__ void sgd_step_multi_kernel(const __grid_constant__ SgdMultiArgs a) {
    const int64_t block = blockIdx.x;
    // The tensor that owns this block: the last t with block_start[t] <= block (tensors with n == 0 own
    // no blocks and are skipped because their start equals the next one's).
    int t = 0;
    while (t + 1 < a.count && a.block_start[t + 1] <= block) t++;
    const int64_t n = a.n[t];
    const int64_t lo = (block - a.block_start[t]) * kChunk;  // a multiple of 4
    const int64_t hi = lo + kChunk < n ? lo + kChunk : n;
    float* param = a.param[t];
    const float* grad = a.grad[t];
    float* buf = a.buf[t];
    if (sgd_aligned(param, grad, buf, a.s)) {
        const int64_t vhi = hi / 4;  // whole groups of four below hi
        for (int64_t v = lo / 4 + threadIdx.x; v < vhi; v += blockDim.x) sgd_vector(v, param, grad, buf, a.s);
        for (int64_t i = 4 * vhi + threadIdx.x; i < hi; i += blockDim.x) sgd_scalar(i, param, grad, buf, a.s);
    } else {
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) sgd_scalar(i, param, grad, buf, a.s);
    }
}

// ---------------------------------------------------------------------------- Adam
// AdamParams as naive uses it: the scalars combined in double and rounded to float once.
struct AdamScalars {
    float wd, shrink, wt, one_minus_w, b2, one_minus_b2, step_size, bc2_sqrt, eps;
    bool decay, decoupled, amsgrad, low_weight;
};

AdamScalars adam_scalars(const AdamParams& p) {
    AdamScalars s;
    const double w = 1.0 - p.beta1;
    s.wd = float(p.weight_decay);
    s.shrink = float(1.0 - p.lr * p.weight_decay);
    s.wt = float(w);
    s.one_minus_w = float(1.0 - w);
    s.b2 = float(p.beta2);
    s.one_minus_b2 = float(1.0 - p.beta2);
    s.step_size = float(p.lr / p.bias_correction1);
    s.bc2_sqrt = float(std::sqrt(p.bias_correction2));
    s.eps = float(p.eps);
    s.decay = p.weight_decay != 0.0;
    s.decoupled = p.decoupled;
    s.amsgrad = p.amsgrad;
    s.low_weight = w < 0.5;
    return s;
}

// Element i of naive::adam_step<float>, with correctly rounded intrinsics (no FMA contraction; sqrt and
// division are correctly rounded on both sides).
__device__ __forceinline__ void adam_element(int64_t i, float* param, const float* grad, float* m_, float* v_,
                                             float* vmax_, const AdamScalars& s) {
    float g = grad[i], x = param[i];
    if (s.decay) {
        if (s.decoupled)
            x = __fmul_rn(x, s.shrink);
        else
            g = __fadd_rn(g, __fmul_rn(s.wd, x));
    }
    const float m = m_[i];
    const float d = __fsub_rn(g, m);
    const float m1 = s.low_weight ? __fadd_rn(m, __fmul_rn(s.wt, d)) : __fsub_rn(g, __fmul_rn(d, s.one_minus_w));
    const float v1 = __fadd_rn(__fmul_rn(v_[i], s.b2), __fmul_rn(__fmul_rn(s.one_minus_b2, g), g));
    m_[i] = m1;
    v_[i] = v1;
    float sec = v1;
    if (s.amsgrad) {
        const float old = vmax_[i];
        sec = old < v1 || v1 != v1 ? v1 : old;
        vmax_[i] = sec;
    }
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(sec), s.bc2_sqrt), s.eps);
    param[i] = __fsub_rn(x, __fmul_rn(s.step_size, __fdiv_rn(m1, denom)));
}

__global__ void adam_step_kernel(int64_t n, float* __restrict__ param, const float* __restrict__ grad,
                                 float* __restrict__ m, float* __restrict__ v, float* __restrict__ vmax,
                                 AdamScalars s) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = start; i < n; i += stride) adam_element(i, param, grad, m, v, vmax, s);
}

// adam_step_multi: up to kAdamTensors tensors per launch, as sgd_step_multi (5 pointers and a count per
// tensor: 24 * 48 + 25 * 8 + the scalars, about 1.4 KB of kernel parameters).
constexpr int kAdamTensors = 24;

struct AdamMultiArgs {
    float* param[kAdamTensors];
    const float* grad[kAdamTensors];
    float* m[kAdamTensors];
    float* v[kAdamTensors];
    float* vmax[kAdamTensors];
    int64_t n[kAdamTensors];
    int64_t block_start[kAdamTensors + 1];
    int count;
    AdamScalars s;
};
static_assert(sizeof(AdamMultiArgs) < 2200, "the parameter struct must stay well under 4 KB");

__global__ void adam_step_multi_kernel(const __grid_constant__ AdamMultiArgs a) {
    const int64_t block = blockIdx.x;
    int t = 0;
    while (t + 1 < a.count && a.block_start[t + 1] <= block) t++;
    const int64_t lo = (block - a.block_start[t]) * kChunk;
    const int64_t hi = lo + kChunk < a.n[t] ? lo + kChunk : a.n[t];
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x)
        adam_element(i, a.param[t], a.grad[t], a.m[t], a.v[t], a.vmax[t], a.s);
}

// ---------------------------------------------------------------------------- gradient norm
// Up to kGradTensors gradients per launch; each block reduces one kChunk piece of one gradient into a
// double partial (sum of squares, or max |x| with NaN propagating), written to its own slot.
constexpr int kGradTensors = 96;

struct GradMultiArgs {
    float* grad[kGradTensors];
    int64_t n[kGradTensors];
    int64_t block_start[kGradTensors + 1];
    int count;
};
static_assert(sizeof(GradMultiArgs) < 2400, "the parameter struct must stay well under 4 KB");

__device__ __forceinline__ double norm_combine(double a, double b, bool inf_norm) {
    if (!inf_norm) return a + b;
    return a != a || b != b ? (a != a ? a : b) : (a > b ? a : b);
}

// Combination of v over the block, valid in thread 0 (blockDim.x is kBlock).
__device__ double block_norm(double v, bool inf_norm) {
    __shared__ double warp_parts[kBlock / 32];
    for (int off = 16; off > 0; off /= 2) v = norm_combine(v, __shfl_down_sync(0xffffffffu, v, off), inf_norm);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_parts[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < int(blockDim.x / 32) ? warp_parts[lane] : 0.0;
        for (int off = 16; off > 0; off /= 2) v = norm_combine(v, __shfl_down_sync(0xffffffffu, v, off), inf_norm);
    }
    return v;
}

__global__ void grad_norm_multi_kernel(const __grid_constant__ GradMultiArgs a, double* __restrict__ parts,
                                       int64_t part_offset, bool inf_norm) {
    const int64_t block = blockIdx.x;
    int t = 0;
    while (t + 1 < a.count && a.block_start[t + 1] <= block) t++;
    const int64_t lo = (block - a.block_start[t]) * kChunk;
    const int64_t hi = lo + kChunk < a.n[t] ? lo + kChunk : a.n[t];
    double acc = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const double x = double(a.grad[t][i]);
        acc = norm_combine(acc, inf_norm ? fabs(x) : x * x, inf_norm);
    }
    acc = block_norm(acc, inf_norm);
    if (threadIdx.x == 0) parts[part_offset + block] = acc;
}

// One block: total = sqrt(sum of the parts) (2-norm) or their maximum, as float.
__global__ void grad_norm_total_kernel(int64_t count, const double* __restrict__ parts, float* __restrict__ total,
                                       bool inf_norm) {
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) v = norm_combine(v, parts[i], inf_norm);
    v = block_norm(v, inf_norm);
    if (threadIdx.x == 0) *total = float(inf_norm ? v : sqrt(v));
}

__global__ void grad_scale_multi_kernel(const __grid_constant__ GradMultiArgs a, const float* __restrict__ total,
                                        double max_norm) {
    const int64_t block = blockIdx.x;
    int t = 0;
    while (t + 1 < a.count && a.block_start[t + 1] <= block) t++;
    const int64_t lo = (block - a.block_start[t]) * kChunk;
    const int64_t hi = lo + kChunk < a.n[t] ? lo + kChunk : a.n[t];
    // clip_coef = max_norm / (total + 1e-6) in float, clamped to 1 (as PyTorch, whose norm is float).
    const float coef = __fdiv_rn(float(max_norm), __fadd_rn(*total, 1e-6f));
    const float c = coef < 1.0f ? coef : 1.0f;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) a.grad[t][i] = __fmul_rn(a.grad[t][i], c);
}

// Fills `a` from list[first...] up to kGradTensors tensors; returns the index after the last one taken.
int fill_grad_args(GradMultiArgs& a, const GradTensor* list, int count, int first) {
    a.count = 0;
    a.block_start[0] = 0;
    int k = first;
    for (; k < count && a.count < kGradTensors; k++) {
        const int64_t blocks = (list[k].n + kChunk - 1) / kChunk;
        if (blocks == 0) continue;
        a.grad[a.count] = list[k].grad;
        a.n[a.count] = list[k].n;
        a.block_start[a.count + 1] = a.block_start[a.count] + blocks;
        a.count++;
    }
    return k;
}

// ---------------------------------------------------------------------------- dropout
__device__ __forceinline__ float dropout_element(float x, uint8_t& mask, uint64_t seed, int64_t i, float p_min,
                                                 float scale) {
    const bool keep = dropout_uniform(seed, uint64_t(i)) >= p_min;
    mask = uint8_t(keep);
    return __fmul_rn(x, keep ? scale : 0.0f);
}

// T: float (16-byte float4 path when aligned) or bfloat16 (scalar loop, widened on load, rounded on store).
template <typename T>
__global__ void dropout_fwd_kernel(int64_t n, T* __restrict__ y, uint8_t* __restrict__ mask, const T* __restrict__ x,
                                   float p_min, float scale, uint64_t seed) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    int64_t nvec = 0;
    if constexpr (std::is_same_v<T, float>) {
        const bool aligned = aligned16(y) && aligned16(x) && (reinterpret_cast<uintptr_t>(mask) & 3) == 0;
        nvec = aligned ? n / 4 : 0;
        for (int64_t v = start; v < nvec; v += stride) {
            const float4 xv = reinterpret_cast<const float4*>(x)[v];
            float4 yv;
            uchar4 m;
            yv.x = dropout_element(xv.x, m.x, seed, 4 * v, p_min, scale);
            yv.y = dropout_element(xv.y, m.y, seed, 4 * v + 1, p_min, scale);
            yv.z = dropout_element(xv.z, m.z, seed, 4 * v + 2, p_min, scale);
            yv.w = dropout_element(xv.w, m.w, seed, 4 * v + 3, p_min, scale);
            reinterpret_cast<float4*>(y)[v] = yv;
            reinterpret_cast<uchar4*>(mask)[v] = m;
        }
    }
    for (int64_t i = 4 * nvec + start; i < n; i += stride)
        y[i] = T(dropout_element(float(x[i]), mask[i], seed, i, p_min, scale));
}

__device__ __forceinline__ float dropout_grad(float dx, float dy, uint8_t m, float scale) {
    return __fadd_rn(dx, __fmul_rn(dy, m ? scale : 0.0f));
}

template <typename T>
__global__ void dropout_bwd_kernel(int64_t n, T* __restrict__ dx, const T* __restrict__ dy,
                                   const uint8_t* __restrict__ mask, float scale) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    int64_t nvec = 0;
    if constexpr (std::is_same_v<T, float>) {
        const bool aligned = aligned16(dx) && aligned16(dy) && (reinterpret_cast<uintptr_t>(mask) & 3) == 0;
        nvec = aligned ? n / 4 : 0;
        for (int64_t v = start; v < nvec; v += stride) {
            float4 d = reinterpret_cast<const float4*>(dx)[v];
            const float4 g = reinterpret_cast<const float4*>(dy)[v];
            const uchar4 m = reinterpret_cast<const uchar4*>(mask)[v];
            d.x = dropout_grad(d.x, g.x, m.x, scale);
            d.y = dropout_grad(d.y, g.y, m.y, scale);
            d.z = dropout_grad(d.z, g.z, m.z, scale);
            d.w = dropout_grad(d.w, g.w, m.w, scale);
            reinterpret_cast<float4*>(dx)[v] = d;
        }
    }
    for (int64_t i = 4 * nvec + start; i < n; i += stride)
        dx[i] = T(dropout_grad(float(dx[i]), float(dy[i]), mask[i], scale));
}

// dropout_fwd and dropout_bwd for T = float and bfloat16: the scalars as naive rounds them.
template <typename T>
void dropout_fwd_any(int64_t n, T* y, uint8_t* mask, const T* x, double p, uint64_t seed) {
    if (n == 0) return;
    const float scale = float(1.0 / (1.0 - p));
    // u >= p in double equals u >= the smallest float not below p, since u is a float: one float compare.
    float p_min = float(p);
    if (double(p_min) < p) p_min = std::nextafter(p_min, 2.0f);
    const int64_t threads = std::is_same_v<T, float> ? (n + 3) / 4 : n;
    dropout_fwd_kernel<<<grid_for(threads), kBlock, 0, stream()>>>(n, y, mask, x, p_min, scale, seed);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void dropout_bwd_any(int64_t n, T* dx, const T* dy, const uint8_t* mask, double p) {
    if (n == 0) return;
    const float scale = float(1.0 / (1.0 - p));
    const int64_t threads = std::is_same_v<T, float> ? (n + 3) / 4 : n;
    dropout_bwd_kernel<<<grid_for(threads), kBlock, 0, stream()>>>(n, dx, dy, mask, scale);
    DYAD_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------- finiteness
// CUDA's isfinite may return any nonzero int for true: made a bool (0 or 1) here.
__device__ __forceinline__ bool finite_value(float v) { return isfinite(v) != 0; }

__global__ void isfinite_kernel(int64_t n, uint8_t* __restrict__ out, const float* __restrict__ x) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    const bool aligned = aligned16(x) && (reinterpret_cast<uintptr_t>(out) & 3) == 0;
    const int64_t nvec = aligned ? n / 4 : 0;
    for (int64_t v = start; v < nvec; v += stride) {
        const float4 xv = reinterpret_cast<const float4*>(x)[v];
        uchar4 o;
        o.x = uint8_t(finite_value(xv.x));
        o.y = uint8_t(finite_value(xv.y));
        o.z = uint8_t(finite_value(xv.z));
        o.w = uint8_t(finite_value(xv.w));
        reinterpret_cast<uchar4*>(out)[v] = o;
    }
    for (int64_t i = 4 * nvec + start; i < n; i += stride) out[i] = uint8_t(finite_value(x[i]));
}

// Blocks of the first count_nonfinite pass (each walks a grid-stride share): enough to fill the GPU.
constexpr int kCountBlocks = 1024;

// Sum of v over the block, valid in thread 0. blockDim.x is kBlock (a multiple of 32).
__device__ long long block_sum(long long v) {
    __shared__ long long warp_sums[kBlock / 32];
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0;
        for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    }
    return v;
}

__global__ void count_nonfinite_kernel(int64_t n, const float* __restrict__ x, long long* __restrict__ block_counts) {
    const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t nvec = aligned16(x) ? n / 4 : 0;
    long long bad = 0;
    for (int64_t v = start; v < nvec; v += stride) {
        const float4 xv = reinterpret_cast<const float4*>(x)[v];
        bad += !finite_value(xv.x) + !finite_value(xv.y) + !finite_value(xv.z) + !finite_value(xv.w);
    }
    for (int64_t i = 4 * nvec + start; i < n; i += stride) bad += !finite_value(x[i]);
    bad = block_sum(bad);
    if (threadIdx.x == 0) block_counts[blockIdx.x] = bad;
}

// One block: total = the sum of `count` block counts.
__global__ void sum_counts_kernel(int count, const long long* __restrict__ block_counts,
                                  long long* __restrict__ total) {
    long long v = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) v += block_counts[i];
    v = block_sum(v);
    if (threadIdx.x == 0) *total = v;
}

}  // namespace

// ---------------------------------------------------------------------------- launchers
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p) {
    if (n == 0) return;
    // Each thread handles about four elements at a time.
    sgd_step_kernel<<<grid_for((n + 3) / 4), kBlock, 0, stream()>>>(n, param, grad, momentum_buf, sgd_scalars(p));
    DYAD_CUDA_CHECK_LAUNCH();
}

void sgd_step_multi(const SgdTensor* list, int count, const SgdParams& p) {
    SgdMultiArgs a{};
    a.s = sgd_scalars(p);
    // Largest grid of one launch: far below the 2^31 - 1 limit of grid x.
    constexpr int64_t kMaxBlocks = int64_t(1) << 30;
    auto launch = [&] {
        const int64_t blocks = a.block_start[a.count];
        if (blocks > 0) {
            sgd_step_multi_kernel<<<unsigned(blocks), kBlock, 0, stream()>>>(a);
            DYAD_CUDA_CHECK_LAUNCH();
        }
        a.count = 0;
        a.block_start[0] = 0;
    };
    a.count = 0;
    a.block_start[0] = 0;
    for (int k = 0; k < count; k++) {
        const SgdTensor& t = list[k];
        const int64_t blocks = (t.n + kChunk - 1) / kChunk;
        if (blocks == 0) continue;  // nothing to update
        if (a.count == kMultiTensors || a.block_start[a.count] + blocks > kMaxBlocks) launch();
        a.param[a.count] = t.param;
        a.grad[a.count] = t.grad;
        a.buf[a.count] = t.momentum_buf;
        a.n[a.count] = t.n;
        a.block_start[a.count + 1] = a.block_start[a.count] + blocks;
        a.count++;
    }
    if (a.count > 0) launch();
}

void adam_step(int64_t n, float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const AdamParams& p) {
    if (n == 0) return;
    adam_step_kernel<<<grid_for(n), kBlock, 0, stream()>>>(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
                                                           adam_scalars(p));
    DYAD_CUDA_CHECK_LAUNCH();
}

void adam_step_multi(const AdamTensor* list, int count, const AdamParams& p) {
    AdamMultiArgs a{};
    a.s = adam_scalars(p);
    constexpr int64_t kMaxBlocks = int64_t(1) << 30;
    auto launch = [&] {
        const int64_t blocks = a.block_start[a.count];
        if (blocks > 0) {
            adam_step_multi_kernel<<<unsigned(blocks), kBlock, 0, stream()>>>(a);
            DYAD_CUDA_CHECK_LAUNCH();
        }
        a.count = 0;
        a.block_start[0] = 0;
    };
    a.count = 0;
    a.block_start[0] = 0;
    for (int k = 0; k < count; k++) {
        const AdamTensor& t = list[k];
        const int64_t blocks = (t.n + kChunk - 1) / kChunk;
        if (blocks == 0) continue;
        if (a.count == kAdamTensors || a.block_start[a.count] + blocks > kMaxBlocks) launch();
        a.param[a.count] = t.param;
        a.grad[a.count] = t.grad;
        a.m[a.count] = t.exp_avg;
        a.v[a.count] = t.exp_avg_sq;
        a.vmax[a.count] = t.max_exp_avg_sq;
        a.n[a.count] = t.n;
        a.block_start[a.count + 1] = a.block_start[a.count] + blocks;
        a.count++;
    }
    if (a.count > 0) launch();
}

void grad_norm_multi(const GradTensor* list, int count, float* total, bool inf_norm) {
    // Every block's partial gets its own slot in the workspace, in (tensor, piece) order, so the final sum
    // adds them in a fixed order.
    int64_t blocks = 0;
    for (int k = 0; k < count; k++) blocks += (list[k].n + kChunk - 1) / kChunk;
    if (blocks == 0) {
        DYAD_CUDA_CHECK(cudaMemsetAsync(total, 0, sizeof(float), stream()));
        return;
    }
    auto* parts = static_cast<double*>(workspace(size_t(blocks) * sizeof(double)));
    GradMultiArgs a{};
    int64_t offset = 0;
    for (int first = 0; first < count;) {
        first = fill_grad_args(a, list, count, first);
        const int64_t n_blocks = a.block_start[a.count];
        if (n_blocks == 0) continue;
        grad_norm_multi_kernel<<<unsigned(n_blocks), kBlock, 0, stream()>>>(a, parts, offset, inf_norm);
        DYAD_CUDA_CHECK_LAUNCH();
        offset += n_blocks;
    }
    grad_norm_total_kernel<<<1, kBlock, 0, stream()>>>(blocks, parts, total, inf_norm);
    DYAD_CUDA_CHECK_LAUNCH();
}

void grad_scale_multi(const GradTensor* list, int count, const float* total, double max_norm) {
    GradMultiArgs a{};
    for (int first = 0; first < count;) {
        first = fill_grad_args(a, list, count, first);
        const int64_t n_blocks = a.block_start[a.count];
        if (n_blocks == 0) continue;
        grad_scale_multi_kernel<<<unsigned(n_blocks), kBlock, 0, stream()>>>(a, total, max_norm);
        DYAD_CUDA_CHECK_LAUNCH();
    }
}

void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed) {
    dropout_fwd_any(n, y, mask, x, p, seed);
}

void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p) {
    dropout_bwd_any(n, dx, dy, mask, p);
}

void dropout_fwd(int64_t n, bfloat16* y, uint8_t* mask, const bfloat16* x, double p, uint64_t seed) {
    dropout_fwd_any(n, y, mask, x, p, seed);
}

void dropout_bwd(int64_t n, bfloat16* dx, const bfloat16* dy, const uint8_t* mask, double p) {
    dropout_bwd_any(n, dx, dy, mask, p);
}

void isfinite_fwd(int64_t n, uint8_t* out, const float* x) {
    if (n == 0) return;
    isfinite_kernel<<<grid_for((n + 3) / 4), kBlock, 0, stream()>>>(n, out, x);
    DYAD_CUDA_CHECK_LAUNCH();
}

int64_t count_nonfinite(int64_t n, const float* x) {
    // The count is read on the host: refused inside a captured step before anything is queued, so the
    // capture stays intact for CapturedStep to abandon with this message.
    if (capturing(current_device()))
        throw Error(::dyad::detail::str("optim.cu:", __LINE__, ": all_finite() cannot wait for the GPU inside a ",
                                        "captured step; check the gradients after the step returns"));
    if (n == 0) return 0;
    const int blocks = int(std::min<int64_t>(grid_for((n + 3) / 4), kCountBlocks));
    auto* counts = static_cast<long long*>(workspace(size_t(blocks + 1) * sizeof(long long)));
    count_nonfinite_kernel<<<blocks, kBlock, 0, stream()>>>(n, x, counts);
    DYAD_CUDA_CHECK_LAUNCH();
    sum_counts_kernel<<<1, kBlock, 0, stream()>>>(blocks, counts, counts + blocks);
    DYAD_CUDA_CHECK_LAUNCH();
    // The documented sync point: the count comes back to the host.
    long long total = 0;
    DYAD_CUDA_CHECK(cudaMemcpyAsync(&total, counts + blocks, sizeof(total), cudaMemcpyDeviceToHost, stream()));
    wait_stream();  // cudaStreamSynchronize, counted, then check_faults
    return int64_t(total);
}

}  // namespace dyad::cuda
