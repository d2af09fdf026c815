// Devices and backend selection: which CPU kernel set runs, and what CUDA hardware is present.
#pragma once
#include <string>

#include "dyad/export.h"

DYAD_PUBLIC_BEGIN

namespace dyad {

enum class DeviceType { cpu, cuda };

// Where a tensor's memory lives. CUDA devices carry an index (0 for the first GPU).
struct Device {
    DeviceType type = DeviceType::cpu;
    int index = 0;

    static Device cpu() { return {DeviceType::cpu, 0}; }
    static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
    bool is_cpu() const { return type == DeviceType::cpu; }
    bool is_cuda() const { return type == DeviceType::cuda; }
    std::string str() const;  // "cpu", "cuda:0"
    friend bool operator==(const Device& a, const Device& b) {
        return a.type == b.type && (a.type == DeviceType::cpu || a.index == b.index);
    }
    friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
};

// The CPU kernel set used for CPU tensors: naive (plain loops, the reference) or omp (blocked,
// vectorised, parallel; the default). float64 always runs on the naive kernels, which are the only
// ones templated for it. set_cpu_kernels sets the process-wide default; cpu_kernels() is the calling
// thread's set (its CpuKernelsGuard, if one is active, else the default).
enum class CpuKernels { naive, omp };
void set_cpu_kernels(CpuKernels k);
CpuKernels cpu_kernels();
const char* cpu_kernels_name(CpuKernels k);

// Uses kernel set k on the calling thread for a scope (other threads keep theirs), then restores it.
class CpuKernelsGuard {
public:
    explicit CpuKernelsGuard(CpuKernels k);
    ~CpuKernelsGuard();
    CpuKernelsGuard(const CpuKernelsGuard&) = delete;
    CpuKernelsGuard& operator=(const CpuKernelsGuard&) = delete;

private:
    int prev_;  // the thread's previous override (-1: none)
};

// Which algorithm the omp kernels use for the convolutions Winograd applies to (3x3 filters, stride 1,
// padding 0-2; every other convolution uses im2col + GEMM): automatic (the default: Winograd F(4x4, 3x3)
// where it was measured faster, i.e. at least 16 input and 16 output channels and outputs of at least
// 4x4; im2col otherwise), im2col always, or Winograd F(2x2, 3x3) or F(4x4, 3x3) wherever it applies.
// Winograd needs fewer multiplications but rounds more: F(4x4, 3x3) is within 1e-4 of the exact result
// where im2col is within about 2e-6 (docs/testing.md). Process-wide; the environment variable
// DYAD_CPU_CONV (automatic, im2col, winograd2 or winograd4) sets the default at start-up.
enum class CpuConvAlgorithm { automatic, im2col, winograd2, winograd4 };
void set_cpu_conv_algorithm(CpuConvAlgorithm a);
CpuConvAlgorithm cpu_conv_algorithm();
const char* cpu_conv_algorithm_name(CpuConvAlgorithm a);  // "automatic", "im2col", "winograd2", "winograd4"
// The algorithm of that name; throws naming the valid ones otherwise.
CpuConvAlgorithm parse_cpu_conv_algorithm(const std::string& name);

// Whether this build has the CUDA backend compiled in (DYAD_WITH_CUDA at configure time).
bool cuda_built();
// True when the CUDA backend is built and at least one GPU is usable. Never throws: a missing driver or
// GPU simply gives false.
bool cuda_available();
// Number of usable GPUs (0 without CUDA, driver or GPU).
int cuda_device_count();
// Name of GPU `index` ("NVIDIA H100 80GB HBM3"); throws dyad::Error when there is no such device.
std::string cuda_device_name(int index = 0);
// Waits until all work queued on the GPU has finished (no-op without CUDA).
void synchronize();

// Math for float32 convolutions and matrix products on a GPU. fp32: strict IEEE float32 with FMA only (the
// default, what every correctness test uses). tf32: tensor cores with TF32 inputs (10-bit mantissa) and
// float32 accumulation. bf16: float32 matrix products (matmul, linear) round their inputs to bfloat16 and
// accumulate in float32; float32 convolutions run in tf32 (cuDNN offers FP32 tensors a conversion to
// float16 only, whose range ends at 65504, and dyad does not use it). CPU kernels always use fp32.
// The setting is about float32 tensors. bfloat16 tensors (DType::bfloat16) always run as bfloat16 operands
// with float32 accumulation (cuDNN, cuBLAS with CUBLAS_COMPUTE_32F), whatever it says: the bf16 mode of the
// trainer and benchmarks is this setting plus bfloat16 images, so that the whole network runs on bfloat16
// activations (Conv2d and Linear use bfloat16 copies of their float32 weights; see decision 56).
enum class Precision { fp32, tf32, bf16 };
void set_precision(Precision p);
Precision precision();
const char* precision_name(Precision p);
// Parses "fp32", "tf32" or "bf16"; throws dyad::Error naming the text otherwise.
Precision parse_precision(const std::string& name);

// Deterministic mode: GPU convolutions use only algorithms that give bit-identical results from run to
// run (dyad's own CUDA kernels are deterministic always). Off by default: the fastest algorithm wins.
void set_deterministic(bool on);
bool deterministic();

namespace cuda {
// GPU memory held by dyad tensors and dyad's workspaces on `device`, and what the memory pool reserves.
struct MemoryStats {
    size_t in_use = 0;          // bytes in live allocations
    size_t peak = 0;            // the most in_use has been since start or reset_peak_memory_stats()
    size_t reserved = 0;        // bytes the pool holds from the driver (in use plus cached for reuse), plus
                                // graph_reserved
    size_t allocations = 0;     // allocations made so far
    size_t graph_reserved = 0;  // bytes the driver holds for captured steps' CUDA graphs (dyad/capture.h)
};
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns cached, unused GPU memory to the driver (waits for the GPU).
void empty_cache(int device = 0);
// Caps what dyad tensors may hold on `device` (0: no cap, the default): an allocation that would take
// memory_stats().in_use over it throws OutOfMemoryError, as a full device does. For sharing a GPU, and for
// testing what a program does when memory runs out.
void set_memory_limit(size_t bytes, int device = 0);
size_t memory_limit(int device = 0);
// Which GEMM runs matmul/linear on the GPU: cuBLAS (default) or dyad's tiled kernel.
enum class GemmImpl { cublas, tiled };
void set_gemm_impl(GemmImpl g);
GemmImpl gemm_impl();
// Which convolution runs on the GPU: cuDNN (default) or dyad's im2col kernels with the GEMM above.
enum class ConvImpl { cudnn, im2col };
void set_conv_impl(ConvImpl c);
ConvImpl conv_impl();
// How many times dyad has made the host wait for the GPU: copies to the host (item(), to(cpu)),
// synchronize(), all_finite(), timers. A training loop that reads its loss once per step waits once per
// step; everything else only queues work.
size_t host_waits();
// Versions: "CUDA runtime 13.0, driver 13.0, cuBLAS 13.1.0, cuDNN 9.19.0"; "" in a build without CUDA.
// The library versions are those loaded at run time; built_versions() names the headers dyad was compiled
// with ("CUDA 13.0, cuBLAS 13.1.0, cuDNN 9.19.0").
std::string versions();
std::string built_versions();
// Optional, at the end of main, once no GPU tensor, model or captured step is left: waits for the GPU and
// releases what dyad holds there (streams, cuBLAS and cuDNN handles, workspaces, cached memory), so a leak
// checker (compute-sanitizer --leak-check full) sees everything freed. GPU use after it throws. Without it,
// dyad leaves those to the driver at process exit: it never destroys cuBLAS or cuDNN handles from a
// static destructor, which can run after those libraries have unloaded parts of themselves. A no-op
// without CUDA; never throws.
void shutdown() noexcept;

// Times GPU work with CUDA events on dyad's stream: start(), queue work, stop(), then elapsed_ms() waits
// for the stop event. In a build without CUDA, or with no GPU, constructing one throws dyad::Error.
class Timer {
public:
    explicit Timer(int device = 0);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    void start();
    void stop();
    double elapsed_ms();

private:
    int device_;
    void* start_ = nullptr;
    void* stop_ = nullptr;
};
}  // namespace cuda

// Number of threads the omp kernels use (OpenMP's maximum; 1 in a build without OpenMP).
int num_threads();
void set_num_threads(int n);

// Host memory cache. Freed CPU blocks of 256 KiB or more are kept (up to a limit, default 1 GiB) and
// handed out again for a request of the same size: a training loop allocates the same activation and
// gradient sizes every step, and reusing warm pages saves the page faults and zeroing of fresh memory.
struct HostCacheStats {
    size_t cached_bytes = 0;  // held in the cache now (free, ready for reuse)
    size_t hits = 0, misses = 0;
};
HostCacheStats host_cache_stats();
// Returns every cached block to the system.
void empty_host_cache();
// Maximum bytes the cache holds; 0 disables it (and empties it).
void set_host_cache_limit(size_t bytes);

// Sets the omp thread count for a scope and restores the previous one on exit.
class NumThreadsGuard {
public:
    explicit NumThreadsGuard(int n) : prev_(num_threads()) { set_num_threads(n); }
    ~NumThreadsGuard() { set_num_threads(prev_); }
    NumThreadsGuard(const NumThreadsGuard&) = delete;
    NumThreadsGuard& operator=(const NumThreadsGuard&) = delete;

private:
    int prev_;
};

}  // namespace dyad

DYAD_PUBLIC_END
