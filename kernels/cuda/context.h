// The CUDA context kernel code runs in: the current device's dyad stream, its cuBLAS and cuDNN handles
// (created lazily, bound to the stream), a reusable workspace, the fault record, and launch helpers.
// Included only by kernels/cuda sources (it has CUDA types).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>

#include "check.h"
#include "runtime.h"

namespace dyad::cuda {

cudaStream_t stream();  // the current device's stream (see use_device)
cublasHandle_t cublas();
cudnnHandle_t cudnn();
// Device scratch memory of at least nbytes, owned by the current device's context. It grows when asked
// for more and is reused by every call after that; work is ordered on the one stream, so a buffer is
// never in use by two kernels at once. The pointer stays valid until the next workspace() call. Inside a
// captured step it cannot grow (it throws; eager warm-up calls size it), and while a captured graph exists
// an outgrown block is kept rather than freed, since the graph uses its address at every replay.
void* workspace(size_t nbytes);

// The fault record kernels write to: mapped pinned host memory, visible to the host after a wait.
struct FaultRecord {
    int32_t code;  // Fault
    int32_t pad;
    long long a, b, c;
};
FaultRecord* fault_record();  // device-visible pointer for the current device

#ifdef __CUDACC__
// Records the first fault only; later ones are dropped.
__device__ inline void report_fault(FaultRecord* f, Fault code, long long a, long long b, long long c) {
    if (atomicCAS(&f->code, 0, int32_t(code)) == 0) {
        f->a = a;
        f->b = b;
        f->c = c;
        __threadfence_system();
    }
}
#endif

// Launch geometry for grid-stride loops: enough blocks to cover n (capped; the loop covers the rest).
constexpr int kBlock = 256;
inline unsigned grid_for(int64_t n, int block = kBlock) {
    const int64_t b = (n + block - 1) / block;
    return unsigned(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(1) << 20)));
}

}  // namespace dyad::cuda
