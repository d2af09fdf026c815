// Batch normalisation kernels over x (n, c, hw), statistics per channel: dense (n, c, hw) (NCHW with hw =
// H*W) or, with channels_last, (n, hw, c) (NHWC), as y, dy and dx. gamma/beta may be null (no affine
// transform: gamma 1, beta 0). *_bwd kernels ACCUMULATE.
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

struct BatchNormShape {
    int64_t n = 0, c = 0, hw = 0;
    bool channels_last = false;  // (n, hw, c) operands

    // Element offset of (image n, channel c, position i) in the layout in use.
    DYAD_HOST_DEVICE int64_t at(int64_t n_, int64_t c_, int64_t i) const {
        return channels_last ? (n_ * hw + i) * c + c_ : (n_ * c + c_) * hw + i;
    }
};

namespace naive {
// Training forward: per channel, mean and biased variance over (n, hw); y = (x - mean) * invstd * gamma
// + beta with invstd = 1 / sqrt(var + eps). Saves mean and invstd (c each) for backward. When
// running_mean/running_var are not null they become (1 - momentum) * running + momentum * stat, with the
// unbiased variance (count / (count - 1)).
template <typename T>
void batch_norm_fwd_train(const BatchNormShape& s, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                          const T* x, const T* gamma, const T* beta, T momentum, T eps);
// Inference forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
template <typename T>
void batch_norm_fwd_eval(const BatchNormShape& s, T* y, const T* x, const T* running_mean, const T* running_var,
                         const T* gamma, const T* beta, T eps);
// Backward. training: the batch-statistics gradient through mean and variance, with mean/invstd the
// saved batch statistics. Not training: mean/invstd come from the running statistics and dx = dy * gamma
// * invstd. dx, dgamma, dbeta may each be null (not needed).
template <typename T>
void batch_norm_bwd(const BatchNormShape& s, bool training, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                    const T* mean, const T* invstd, const T* gamma);
// Batch norm followed by ReLU: y = relu(batch norm of x), the statistics as above (of x, before the
// ReLU). The backward takes that y and passes dy where y > 0 (relu_bwd's rule) into batch_norm_bwd.
template <typename T>
void batch_norm_relu_fwd_train(const BatchNormShape& s, T* y, T* save_mean, T* save_invstd, T* running_mean,
                               T* running_var, const T* x, const T* gamma, const T* beta, T momentum, T eps);
template <typename T>
void batch_norm_relu_fwd_eval(const BatchNormShape& s, T* y, const T* x, const T* running_mean, const T* running_var,
                              const T* gamma, const T* beta, T eps);
template <typename T>
void batch_norm_relu_bwd(const BatchNormShape& s, bool training, T* dx, T* dgamma, T* dbeta, const T* dy, const T* y,
                         const T* x, const T* mean, const T* invstd, const T* gamma);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void batch_norm_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                          float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                          const float* beta, float momentum, float eps);
void batch_norm_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                    const bfloat16* dy, const bfloat16* x, const float* mean, const float* invstd, const float* gamma);
void batch_norm_relu_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                               const float* beta, float momentum, float eps);
void batch_norm_relu_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_relu_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                         const bfloat16* dy, const bfloat16* y, const bfloat16* x, const float* mean,
                         const float* invstd, const float* gamma);
}  // namespace naive

namespace omp {
void batch_norm_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                          float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                          float eps);
void batch_norm_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
                    const float* x, const float* mean, const float* invstd, const float* gamma);
// The same contracts as naive's batch_norm_relu_*: the ReLU applied as y is written, and its mask read in
// the backward's two passes, so the pair makes no pass of its own.
void batch_norm_relu_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var, const float* x, const float* gamma,
                               const float* beta, float momentum, float eps);
void batch_norm_relu_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_relu_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta,
                         const float* dy, const float* y, const float* x, const float* mean, const float* invstd,
                         const float* gamma);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void batch_norm_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                          float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                          const float* beta, float momentum, float eps);
void batch_norm_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                    const bfloat16* dy, const bfloat16* x, const float* mean, const float* invstd, const float* gamma);
void batch_norm_relu_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                               const float* beta, float momentum, float eps);
void batch_norm_relu_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                              const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_relu_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                         const bfloat16* dy, const bfloat16* y, const bfloat16* x, const float* mean,
                         const float* invstd, const float* gamma);
}  // namespace omp

namespace cuda {
// Same contracts, float. Per-channel statistics by a block reduction (no atomics: deterministic).
void batch_norm_fwd_train(const BatchNormShape& s, float* y, float* save_mean, float* save_invstd, float* running_mean,
                          float* running_var, const float* x, const float* gamma, const float* beta, float momentum,
                          float eps);
void batch_norm_fwd_eval(const BatchNormShape& s, float* y, const float* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_bwd(const BatchNormShape& s, bool training, float* dx, float* dgamma, float* dbeta, const float* dy,
                    const float* x, const float* mean, const float* invstd, const float* gamma);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void batch_norm_fwd_train(const BatchNormShape& s, bfloat16* y, float* save_mean, float* save_invstd,
                          float* running_mean, float* running_var, const bfloat16* x, const float* gamma,
                          const float* beta, float momentum, float eps);
void batch_norm_fwd_eval(const BatchNormShape& s, bfloat16* y, const bfloat16* x, const float* running_mean,
                         const float* running_var, const float* gamma, const float* beta, float eps);
void batch_norm_bwd(const BatchNormShape& s, bool training, bfloat16* dx, float* dgamma, float* dbeta,
                    const bfloat16* dy, const bfloat16* x, const float* mean, const float* invstd, const float* gamma);
}  // namespace cuda

}  // namespace dyad
