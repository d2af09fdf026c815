// Optimizer and regularisation kernels: the fused SGD update, dropout, and the finiteness check.
#pragma once
#include <cstdint>

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

namespace naive {
template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, const SgdParams& p);
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
}  // namespace naive

namespace omp {
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p);
void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed);
void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p);
int64_t count_nonfinite(int64_t n, const float* x);
}  // namespace omp

// The counter-based uniform behind dropout: splitmix64 of seed + i * golden ratio, top 24 bits, so a
// float holds it exactly. Inline so every backend uses the same arithmetic.
inline float dropout_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return float(z >> 40) * 0x1.0p-24f;
}

}  // namespace dyad
