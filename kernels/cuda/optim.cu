// Placeholder definitions: replaced by the real kernels.
#include "../optim.h"
#include "check.h"
namespace dyad::cuda {
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, const SgdParams& p) { throw CudaError("sgd_step: not written yet"); }
void dropout_fwd(int64_t n, float* y, uint8_t* mask, const float* x, double p, uint64_t seed) { throw CudaError("dropout_fwd: not written yet"); }
void dropout_bwd(int64_t n, float* dx, const float* dy, const uint8_t* mask, double p) { throw CudaError("dropout_bwd: not written yet"); }
int64_t count_nonfinite(int64_t n, const float* x) { throw CudaError("count_nonfinite: not written yet"); }
void isfinite_fwd(int64_t n, uint8_t* out, const float* x) { throw CudaError("isfinite_fwd: not written yet"); }
void sgd_step_multi(const SgdTensor* list, int count, const SgdParams& p) { throw CudaError("sgd_step_multi: not written yet"); }
}  // namespace dyad::cuda
