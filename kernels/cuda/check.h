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
// Errors after which the CUDA context is unusable: a kernel faulted. Every later call fails the same way.
inline bool is_sticky(int code) {
    switch (static_cast<cudaError_t>(code)) {
        case cudaErrorIllegalAddress:
        case cudaErrorLaunchFailure:
        case cudaErrorIllegalInstruction:
        case cudaErrorMisalignedAddress:
        case cudaErrorInvalidAddressSpace:
        case cudaErrorInvalidPc:
        case cudaErrorHardwareStackError:
        case cudaErrorAssert:
        case cudaErrorLaunchTimeout:
            return true;
        default:
            return false;
    }
}

[[noreturn]] inline void throw_gpu(const char* lib, const char* expr, const char* file, int line, int code,
                                   const char* what) {
    const char* base = std::strrchr(file, '/');  // the file name only, as every dyad error
    const bool sticky = std::strcmp(lib, "CUDA") == 0 && is_sticky(code);
    throw ::dyad::CudaError(::dyad::detail::str(
        base ? base + 1 : file, ":", line, ": ", lib, " error ", code, " (", what, ") in ", expr,
        sticky ? ". A GPU kernel faulted, here or in an earlier op (kernels run asynchronously); the GPU can no "
                 "longer be used by this process. Run again with DYAD_CUDA_SYNC=1 to stop at the kernel that "
                 "faulted"
               : ""));
}

// A kernel launch (and, with DYAD_CUDA_SYNC=1, its completion) checked with the host function that made it.
inline void check_launch(cudaError_t status, const char* func, const char* when, const char* file, int line) {
    if (status == cudaSuccess) return;
    throw_gpu("CUDA", ::dyad::detail::str(when, " of the kernel launched by ", func, "()").c_str(), file, line,
              static_cast<int>(status), cudaGetErrorString(status));
}
// Whether the current device's dyad stream is being captured into a graph (runtime.cpp).
bool current_stream_capturing() noexcept;
// DYAD_CUDA_SYNC=1 synchronises after every launch so an asynchronous fault names its kernel (not while a
// step is being captured, where synchronising is not allowed).
inline bool sync_after_launch() {
    static const bool on = [] {
        const char* v = std::getenv("DYAD_CUDA_SYNC");
        return v && v[0] == '1';
    }();
    return on && !current_stream_capturing();
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

// After every kernel launch: a bad configuration fails here, naming the host function (the op) that
// launched it; with DYAD_CUDA_SYNC=1 so do faults.
#define DYAD_CUDA_CHECK_LAUNCH()                                                                                  \
    do {                                                                                                          \
        ::dyad::cuda::detail::check_launch(cudaGetLastError(), __func__, "the launch", __FILE__, __LINE__);       \
        if (::dyad::cuda::detail::sync_after_launch())                                                            \
            ::dyad::cuda::detail::check_launch(cudaDeviceSynchronize(), __func__, "the run", __FILE__, __LINE__); \
    } while (0)

#define DYAD_CUDA_WARN(expr)                                                                       \
    do {                                                                                           \
        const cudaError_t dyad_status_ = (expr);                                                   \
        if (dyad_status_ != cudaSuccess)                                                           \
            std::fprintf(stderr, "%s:%d: CUDA warning %d (%s) in %s\n", __FILE__, __LINE__,        \
                         static_cast<int>(dyad_status_), cudaGetErrorString(dyad_status_), #expr); \
    } while (0)
