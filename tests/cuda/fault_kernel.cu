// A kernel that writes far outside any allocation, for the sticky-error test (tests/cuda/fault_main.cpp).
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/context.h"

namespace {
__global__ void write_out_of_bounds(float* p) { p[threadIdx.x + (size_t(1) << 40)] = 1.0f; }
}  // namespace

namespace dyad::test {
// Queues the faulting kernel on dyad's stream; the fault surfaces at a later CUDA call.
void launch_faulting_kernel(float* p) {
    write_out_of_bounds<<<1, 32, 0, cuda::stream()>>>(p);
    DYAD_CUDA_CHECK_LAUNCH();
}
}  // namespace dyad::test
