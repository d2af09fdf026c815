// Devices and backend selection: which CPU kernel set runs, and what CUDA hardware is present.
#pragma once
#include <string>

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
// ones templated for it. The setting is process-wide.
enum class CpuKernels { naive, omp };
void set_cpu_kernels(CpuKernels k);
CpuKernels cpu_kernels();
const char* cpu_kernels_name(CpuKernels k);

// Sets the CPU kernel set for a scope and restores the previous one on exit.
class CpuKernelsGuard {
public:
    explicit CpuKernelsGuard(CpuKernels k) : prev_(cpu_kernels()) { set_cpu_kernels(k); }
    ~CpuKernelsGuard() { set_cpu_kernels(prev_); }
    CpuKernelsGuard(const CpuKernelsGuard&) = delete;
    CpuKernelsGuard& operator=(const CpuKernelsGuard&) = delete;

private:
    CpuKernels prev_;
};

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
