// Optimizer and regularisation kernels: the fused SGD and Adam updates, the gradient norm for clipping,
// dropout, and the finiteness check.
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"  // DYAD_HOST_DEVICE

namespace dyad {

// torch.optim.SGD's rule, per element:
//   g = grad + weight_decay * param
//   with momentum: buf = first_step ? g : momentum * buf + (1 - dampening) * g
//                  g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
// momentum_buf is unused (may be null) when momentum == 0. One pass over the four arrays.
struct SgdParams {
    double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
    bool nesterov = false;
    bool first_step = true;  // the momentum buffer is initialised from g
};

// One parameter of a multi-tensor SGD step.
struct SgdTensor {
    float* param;
    const float* grad;
    float* momentum_buf;  // null when momentum == 0
    int64_t n;
};

// torch.optim.Adam's rule (AdamW's with decoupled), per element; the bias corrections 1 - beta1^t and
// 1 - beta2^t come from the caller (t: the parameter's own step count, from 1):
//   decoupled:  param = param * (1 - lr * weight_decay)        } only when weight_decay != 0
//   otherwise:  g = grad + weight_decay * param                 }
//   m = lerp(m, g, 1 - beta1)      (m + w * (g - m) for w < 0.5, else g - (g - m) * (1 - w), as torch.lerp)
//   v = v * beta2 + ((1 - beta2) * g) * g
//   amsgrad: vmax = max(vmax, v), s = vmax; else s = v
//   param = param - (lr / bias_correction1) * (m / (sqrt(s) / sqrt(bias_correction2) + eps))
// Scalars are combined in double and rounded to T once (1 - lr * weight_decay, 1 - beta1, 1 - beta2,
// lr / bias_correction1, sqrt(bias_correction2)), as PyTorch passes them to its in-place ops. max_exp_avg_sq
// is unused (may be null) without amsgrad. One pass over the five arrays.
struct AdamParams {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
    bool decoupled = false, amsgrad = false;
    double bias_correction1 = 0.1, bias_correction2 = 0.001;  // for t = 1
};

// One parameter of a multi-tensor Adam step.
struct AdamTensor {
    float* param;
    const float* grad;
    float* exp_avg;
    float* exp_avg_sq;
    float* max_exp_avg_sq;  // null without amsgrad
    int64_t n;
};

// One gradient of a multi-tensor norm or scaling.
struct GradTensor {
    float* grad;
    int64_t n;
};

namespace naive {
template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, const SgdParams& p);
template <typename T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const AdamParams& p);
// The sum of x[i]^2 (inf_norm: the maximum of |x[i]|; NaN if any element is NaN), accumulated in double in
// index order. clip_grad_norm_'s per-gradient part.
template <typename T>
double grad_norm_part(int64_t n, const T* x, bool inf_norm);
// mask[i] = 1 when element i survives: u(seed, i) >= p, where u is a uniform [0, 1) value hashed from
// (seed, i) (dropout_uniform below, identical on every device); y = x * mask / (1 - p).
template <typename T>
void dropout_fwd(int64_t n, T* y, uint8_t* mask, const T* x, double p, uint64_t seed);
// dx += dy * mask / (1 - p).
template <typename T>
void dropout_bwd(int64_t n, T* dx, const T* dy, const uint8_t* mask, double p);
// Number of elements that are inf or NaN.
template <typename T>
int64_t count_nonfinite(int64_t n, const T* x);
// out[i] = 1 when x[i] is finite, else 0.
template <typename T>
void isfinite_fwd(int64_t n, uint8_t* out, const T* x);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void dropout_fwd(int64_t n, bfloat16* y, uint8_t* mask, const bfloat16* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, bfloat16* dx, const bfloat16* dy, const uint8_t* mask, double p);
}  // namespace naive

namespace omp {
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p);
// Same float expressions as naive, element by element: bit-equal.
void adam_step(int64_t n, float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const AdamParams& p);
// Per-thread double partials added in thread order (sums differ from naive by rounding only).
double grad_norm_part(int64_t n, const float* x, bool inf_norm);
void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p);
int64_t count_nonfinite(int64_t n, const float* x);
void isfinite_fwd(int64_t n, uint8_t* out, const float* x);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void dropout_fwd(int64_t n, bfloat16* y, uint8_t* mask, const bfloat16* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, bfloat16* dx, const bfloat16* dy, const uint8_t* mask, double p);
}  // namespace omp

namespace cuda {
// Same contracts, float. count_nonfinite returns a count to the host, so it waits for the GPU.
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p);
void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p);
int64_t count_nonfinite(int64_t n, const float* x);
void isfinite_fwd(int64_t n, uint8_t* out, const float* x);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void dropout_fwd(int64_t n, bfloat16* y, uint8_t* mask, const bfloat16* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, bfloat16* dx, const bfloat16* dy, const uint8_t* mask, double p);
// The SGD step for many parameters in few launches (one per up to a few dozen tensors): each tensor's
// elements are updated exactly as sgd_step would. `list` is host memory; the pointers in it are device
// memory.
void sgd_step_multi(const SgdTensor* list, int count, const SgdParams& p);
void adam_step(int64_t n, float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const AdamParams& p);
// The Adam step for many parameters (sharing AdamParams) in few launches, each element as adam_step.
void adam_step_multi(const AdamTensor* list, int count, const AdamParams& p);
// clip_grad_norm_ on the GPU with no host wait: total (one float, device memory) = the norm of all the
// gradients together (2-norm, or the maximum absolute value), accumulated in double per block and added
// in a fixed order (the same bits every run); then every gradient is multiplied by
// min(1, max_norm / (total + 1e-6)), read from device memory. `list` is host memory.
void grad_norm_multi(const GradTensor* list, int count, float* total, bool inf_norm);
void grad_scale_multi(const GradTensor* list, int count, const float* total, double max_norm);
}  // namespace cuda

// The counter-based uniform behind dropout: element i's value is a hash of (seed, i), so any device and
// any thread count draws the same mask. 32-bit arithmetic throughout, because 32-bit multiplies vectorise
// on AVX2 and are native on a GPU (64-bit ones are neither): the index is folded to 32 bits with the high
// word mixed in, offset by the seed's low word, then scrambled by a multiply-xorshift hash (a bijection
// of 32-bit words, so distinct indices below 2^32 never share a value) keyed by the seed's high word.
// The top 24 bits make a float in [0, 1) exactly.
DYAD_HOST_DEVICE inline float dropout_uniform(uint64_t seed, uint64_t i) {
    uint32_t x = uint32_t(i) ^ (uint32_t(i >> 32) * 0x85ebca6bu);
    x = x * 0x9e3779b9u + uint32_t(seed);
    x ^= uint32_t(seed >> 32);
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return float(x >> 8) * 0x1.0p-24f;
}

}  // namespace dyad
