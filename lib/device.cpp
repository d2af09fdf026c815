// Device queries and the CPU kernel setting. The CUDA calls compile only with DYAD_WITH_CUDA; without
// it every query answers "no GPU".
#include "dyad/device.h"

#include <atomic>

#include "dyad/error.h"

#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace dyad {

std::string Device::str() const { return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index); }

namespace {
std::atomic<CpuKernels> g_cpu_kernels{CpuKernels::omp};
}

void set_cpu_kernels(CpuKernels k) { g_cpu_kernels.store(k); }
CpuKernels cpu_kernels() { return g_cpu_kernels.load(); }
const char* cpu_kernels_name(CpuKernels k) { return k == CpuKernels::naive ? "naive" : "omp"; }

bool cuda_built() { return DYAD_WITH_CUDA != 0; }

int cuda_device_count() {
#if DYAD_WITH_CUDA
    static const int n = cuda::device_count();  // fixed for the life of the process
    return n;
#else
    return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

std::string cuda_device_name(int index) {
    DYAD_CHECK(index >= 0 && index < cuda_device_count(), "cuda_device_name: no CUDA device ", index, " (",
               cuda_device_count(), " available", cuda_built() ? "" : "; this build has no CUDA support", ")");
#if DYAD_WITH_CUDA
    return cuda::device_name(index);
#else
    return {};
#endif
}

void synchronize() {
#if DYAD_WITH_CUDA
    for (int i = 0; i < cuda_device_count(); i++) cuda::synchronize(i);
#endif
}

int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    DYAD_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

}  // namespace dyad
