// Status checks for the CUDA runtime, cuBLAS and cuDNN: statement, file, line and the library's error
// string, thrown as dyad::CudaError. Teardown code uses DYAD_CUDA_WARN, which logs and never throws.
// kernels/ includes no other public header: dyad/error.h has no Tensor in it.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dyad/error.h"

namespace dyad::cuda::detail {
[[noreturn]] inline void throw_gpu(const char* lib, const char* expr, const char* file, int line, int code,
                                   const char* what) {
    const char* base = std::strrchr(file, '/');  // the file name only, as every dyad error
    throw ::dyad::CudaError(
        ::dyad::detail::str(base ? base + 1 : file, ":", line, ": ", lib, " error ", code, " (", what, ") in ", expr));
}
// DYAD_CUDA_SYNC=1 synchronises after every launch so an asynchronous fault names its kernel.
inline bool sync_after_launch() {
    static const bool on = [] {
        const char* v = std::getenv("DYAD_CUDA_SYNC");
        return v && v[0] == '1';
    }();
    return on;
}
}  // namespace dyad::cuda::detail

#define DYAD_GPU_CHECK_(lib, expr, ok, to_string)                                                           \
    do {                                                                                                    \
        const auto dyad_status_ = (expr);                                                                   \
        if (dyad_status_ != (ok))                                                                           \
            ::dyad::cuda::detail::throw_gpu(lib, #expr, __FILE__, __LINE__, static_cast<int>(dyad_status_), \
                                            to_string(dyad_status_));                                       \
    } while (0)

#define DYAD_CUDA_CHECK(expr) DYAD_GPU_CHECK_("CUDA", expr, cudaSuccess, cudaGetErrorString)
#define DYAD_CUBLAS_CHECK(expr) DYAD_GPU_CHECK_("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, cublasGetStatusString)
#define DYAD_CUDNN_CHECK(expr) DYAD_GPU_CHECK_("cuDNN", expr, CUDNN_STATUS_SUCCESS, cudnnGetErrorString)

// After every kernel launch: a bad configuration fails here; with DYAD_CUDA_SYNC=1 so do faults.
#define DYAD_CUDA_CHECK_LAUNCH()                                                                 \
    do {                                                                                         \
        DYAD_CUDA_CHECK(cudaGetLastError());                                                     \
        if (::dyad::cuda::detail::sync_after_launch()) DYAD_CUDA_CHECK(cudaDeviceSynchronize()); \
    } while (0)

#define DYAD_CUDA_WARN(expr)                                                                       \
    do {                                                                                           \
        const cudaError_t dyad_status_ = (expr);                                                   \
        if (dyad_status_ != cudaSuccess)                                                           \
            std::fprintf(stderr, "%s:%d: CUDA warning %d (%s) in %s\n", __FILE__, __LINE__,        \
                         static_cast<int>(dyad_status_), cudaGetErrorString(dyad_status_), #expr); \
    } while (0)
