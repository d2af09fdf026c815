// Device queries and the CPU kernel setting. The CUDA calls compile only with DYAD_WITH_CUDA; without
// it every query answers "no GPU".
#include "dyad/device.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dyad/error.h"
#include "kernels/conv.h"

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
thread_local int t_cpu_kernels = -1;  // the thread's CpuKernelsGuard override; -1: the process default
}  // namespace

void set_cpu_kernels(CpuKernels k) { g_cpu_kernels.store(k); }
CpuKernels cpu_kernels() { return t_cpu_kernels >= 0 ? CpuKernels(t_cpu_kernels) : g_cpu_kernels.load(); }

CpuKernelsGuard::CpuKernelsGuard(CpuKernels k) : prev_(t_cpu_kernels) { t_cpu_kernels = int(k); }
CpuKernelsGuard::~CpuKernelsGuard() { t_cpu_kernels = prev_; }
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

// ---------------------------------------------------------------------------- GPU settings
namespace dyad {

namespace {
std::atomic<Precision> g_precision{Precision::fp32};
std::atomic<bool> g_deterministic{false};

void require_gpu(const char* what, int device) {
    DYAD_CHECK(device >= 0 && device < cuda_device_count(), what, ": no CUDA device ", device, " (",
               cuda_device_count(), " available", cuda_built() ? "" : "; this build has no CUDA support", ")");
}
}  // namespace

void set_precision(Precision p) {
    g_precision.store(p);
#if DYAD_WITH_CUDA
    cuda::set_math(p == Precision::fp32   ? cuda::Math::fp32
                   : p == Precision::tf32 ? cuda::Math::tf32
                                          : cuda::Math::bf16);
#endif
}
Precision precision() { return g_precision.load(); }
const char* precision_name(Precision p) {
    return p == Precision::fp32 ? "fp32" : p == Precision::tf32 ? "tf32" : "bf16";
}
Precision parse_precision(const std::string& name) {
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
        if (name == precision_name(p)) return p;
    DYAD_CHECK(false, "unknown precision '", name, "' (expected fp32, tf32 or bf16)");
    return Precision::fp32;
}

namespace {
constexpr CpuConvAlgorithm kCpuConvAlgorithms[] = {CpuConvAlgorithm::automatic, CpuConvAlgorithm::im2col,
                                                   CpuConvAlgorithm::winograd2, CpuConvAlgorithm::winograd4};
constexpr omp::ConvAlgo kKernelAlgos[] = {omp::ConvAlgo::automatic, omp::ConvAlgo::im2col, omp::ConvAlgo::winograd_2x2,
                                          omp::ConvAlgo::winograd_4x4};

// DYAD_CPU_CONV sets the default when the library loads; a name that is not an algorithm is reported and
// ignored (throwing here would end the program before main).
[[maybe_unused]] const bool g_cpu_conv_from_env = [] {
    const char* env = std::getenv("DYAD_CPU_CONV");
    if (!env || !*env) return false;
    for (CpuConvAlgorithm a : kCpuConvAlgorithms)
        if (std::string(env) == cpu_conv_algorithm_name(a)) {
            set_cpu_conv_algorithm(a);
            return true;
        }
    std::fprintf(stderr, "dyad: DYAD_CPU_CONV=%s is not automatic, im2col, winograd2 or winograd4; using automatic\n",
                 env);
    return false;
}();
}  // namespace

void set_cpu_conv_algorithm(CpuConvAlgorithm a) { omp::set_conv_algo(kKernelAlgos[int(a)]); }

CpuConvAlgorithm cpu_conv_algorithm() {
    const omp::ConvAlgo k = omp::conv_algo();
    for (int i = 0; i < 4; i++)
        if (kKernelAlgos[i] == k) return kCpuConvAlgorithms[i];
    return CpuConvAlgorithm::automatic;
}

const char* cpu_conv_algorithm_name(CpuConvAlgorithm a) {
    switch (a) {
        case CpuConvAlgorithm::automatic:
            return "automatic";
        case CpuConvAlgorithm::im2col:
            return "im2col";
        case CpuConvAlgorithm::winograd2:
            return "winograd2";
        case CpuConvAlgorithm::winograd4:
            return "winograd4";
    }
    return "?";
}

CpuConvAlgorithm parse_cpu_conv_algorithm(const std::string& name) {
    for (CpuConvAlgorithm a : kCpuConvAlgorithms)
        if (name == cpu_conv_algorithm_name(a)) return a;
    DYAD_CHECK(false, "unknown CPU convolution algorithm '", name,
               "' (expected automatic, im2col, winograd2 or winograd4)");
    return CpuConvAlgorithm::automatic;
}

void set_deterministic(bool on) {
    g_deterministic.store(on);
#if DYAD_WITH_CUDA
    cuda::set_deterministic(on);
#endif
}
bool deterministic() { return g_deterministic.load(); }

namespace cuda {

MemoryStats memory_stats(int device) {
    require_gpu("memory_stats", device);
    MemoryStats m;
#if DYAD_WITH_CUDA
    const PoolStats s = pool_stats(device);
    m.in_use = s.in_use;
    m.peak = s.peak;
    m.reserved = s.reserved;
    m.allocations = s.allocations;
    m.graph_reserved = s.graph_reserved;
#endif
    return m;
}

void reset_peak_memory_stats(int device) {
    require_gpu("reset_peak_memory_stats", device);
#if DYAD_WITH_CUDA
    reset_peak(device);
#endif
}

void empty_cache(int device) {
    require_gpu("empty_cache", device);
#if DYAD_WITH_CUDA
    trim_pool(device);
#endif
}

void set_memory_limit(size_t bytes, int device) {
    require_gpu("set_memory_limit", device);
#if DYAD_WITH_CUDA
    set_device_memory_limit(device, bytes);
#else
    (void)bytes;
#endif
}

size_t memory_limit(int device) {
    require_gpu("memory_limit", device);
#if DYAD_WITH_CUDA
    return device_memory_limit(device);
#else
    return 0;
#endif
}

namespace {
std::atomic<GemmImpl> g_gemm{GemmImpl::cublas};
std::atomic<ConvImpl> g_conv{ConvImpl::cudnn};
}  // namespace

void set_gemm_impl(GemmImpl g) {
    g_gemm.store(g);
#if DYAD_WITH_CUDA
    set_gemm_kernel(g == GemmImpl::cublas ? GemmKernel::cublas : GemmKernel::tiled);
#endif
}
GemmImpl gemm_impl() { return g_gemm.load(); }

void set_conv_impl(ConvImpl c) {
    g_conv.store(c);
#if DYAD_WITH_CUDA
    set_conv_kernel(c == ConvImpl::cudnn ? ConvKernel::cudnn : ConvKernel::im2col);
#endif
}
ConvImpl conv_impl() { return g_conv.load(); }

size_t host_waits() {
#if DYAD_WITH_CUDA
    return host_wait_count();
#else
    return 0;
#endif
}

std::string versions() {
#if DYAD_WITH_CUDA
    std::string v = "CUDA runtime " + runtime_version();
    if (cuda_available()) v += ", driver " + driver_version();
    return v + ", " + library_versions();
#else
    return {};
#endif
}

std::string built_versions() {
#if DYAD_WITH_CUDA
    return header_versions();
#else
    return {};
#endif
}

void shutdown() noexcept {
#if DYAD_WITH_CUDA
    release_all();
#endif
}

Timer::Timer(int device) : device_(device) {
    require_gpu("cuda::Timer", device);
#if DYAD_WITH_CUDA
    use_device(device);
    EventPair e = event_pair_create();
    start_ = e.start;
    stop_ = e.stop;
#endif
}

Timer::~Timer() {
#if DYAD_WITH_CUDA
    EventPair e{start_, stop_};
    event_pair_destroy(e);
#else
    (void)device_, (void)start_, (void)stop_;  // no events without CUDA (clang: -Wunused-private-field)
#endif
}

void Timer::start() {
#if DYAD_WITH_CUDA
    use_device(device_);
    event_record(start_);
#endif
}

void Timer::stop() {
#if DYAD_WITH_CUDA
    use_device(device_);
    event_record(stop_);
#endif
}

double Timer::elapsed_ms() {
#if DYAD_WITH_CUDA
    return event_elapsed_ms(EventPair{start_, stop_});
#else
    return 0.0;
#endif
}

}  // namespace cuda
}  // namespace dyad
