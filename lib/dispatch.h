// The one place that knows the three kernel sets. DYAD_DISPATCH_FLOAT picks naive/omp/cuda from the
// device and the process-wide CPU kernel setting, and the element type from the dtype: inside the
// argument list, T names the element type (float or double). float64 runs on the naive kernels only.
#pragma once
#include "dyad/device.h"
#include "dyad/tensor.h"

namespace dyad::detail {

enum class KernelSet { naive, omp, cuda };

inline KernelSet kernel_set(Device d) {
    if (d.is_cuda()) return KernelSet::cuda;
    return cpu_kernels() == CpuKernels::naive ? KernelSet::naive : KernelSet::omp;
}

[[noreturn]] void fail_dtype(const char* file, int line, const char* op, DType got);
[[noreturn]] void fail_no_cuda_kernel(const char* file, int line, const char* op);

}  // namespace dyad::detail

// FN is called as dyad::naive::FN<T>(...) or dyad::omp::FN(...). CUDA kernels for these families arrive
// with the CUDA backend; until then a CUDA tensor reaching here is a clear error, never a silent fallback.
#define DYAD_DISPATCH_FLOAT(device, dtype, FN, ...)                                            \
    do {                                                                                       \
        const ::dyad::DType dyad_dt_ = (dtype);                                                \
        const ::dyad::Device dyad_dev_ = (device);                                             \
        if (dyad_dev_.is_cuda()) ::dyad::detail::fail_no_cuda_kernel(__FILE__, __LINE__, #FN); \
        if (dyad_dt_ == ::dyad::DType::float64) {                                              \
            using T = double;                                                                  \
            ::dyad::naive::FN<T>(__VA_ARGS__);                                                 \
        } else if (dyad_dt_ == ::dyad::DType::float32) {                                       \
            using T = float;                                                                   \
            if (::dyad::detail::kernel_set(dyad_dev_) == ::dyad::detail::KernelSet::naive)     \
                ::dyad::naive::FN<T>(__VA_ARGS__);                                             \
            else                                                                               \
                ::dyad::omp::FN(__VA_ARGS__);                                                  \
        } else {                                                                               \
            ::dyad::detail::fail_dtype(__FILE__, __LINE__, #FN, dyad_dt_);                     \
        }                                                                                      \
    } while (0)

// For kernels templated on every dtype in both CPU sets (fill, copy): T is given by the caller.
#define DYAD_DISPATCH_CPU_TEMPLATE(device, FN, ...)                                 \
    do {                                                                            \
        if (::dyad::detail::kernel_set(device) == ::dyad::detail::KernelSet::naive) \
            ::dyad::naive::FN(__VA_ARGS__);                                         \
        else                                                                        \
            ::dyad::omp::FN(__VA_ARGS__);                                           \
    } while (0)
