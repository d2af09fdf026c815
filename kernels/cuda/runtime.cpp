// CUDA runtime (host code, compiled by the C++ compiler): one context per device holding the dyad
// stream, pinned staging buffers, the fault record and the state of a graph capture (the allocations it
// made, the frees it deferred); and per thread and device, the cuBLAS and cuDNN handles and the workspaces.
#include "runtime.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "context.h"

namespace dyad::cuda {

namespace {

// Host <-> device transfers of at least this size go through pinned staging memory.
constexpr size_t kStageMin = size_t(1) << 20;
// Device to host: chunks through two pinned buffers (the host waits for these copies anyway).
constexpr size_t kStageChunk = size_t(4) << 20;
// Host to device: whole transfers through cached pinned blocks, so the host never waits; the blocks in
// flight are capped (beyond, the driver's own pageable path is used).
constexpr size_t kPinnedCacheMax = size_t(1) << 30;

struct CapturedGraph;  // graph capture, below

// A graph allocation that outlived its capture (the loss, gradients). Each launch of its graph makes it
// (again) at the same address; a free from the host ends that incarnation. When the graph is destroyed,
// an incarnation that no host tensor holds any more would leak: graph_destroy frees it.
struct Outliving {
    const CapturedGraph* owner = nullptr;
    bool host_holds = true;  // the tensor made during the capture has not been freed yet
    bool live = false;       // made by a launch and not freed since
};

// A pinned host block for host-to-device staging, free again once `done` has completed.
struct PinnedBlock {
    void* ptr = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
};

// The state of one device that every thread shares: the stream (all of dyad's work on the device is ordered
// on it, whichever thread queues it, so tensors handed between threads need no events), the memory
// counters, the pinned staging buffers (under a mutex), the fault record and the capture state.
struct Context {
    int device = 0;
    std::once_flag stream_once, staging_once;
    cudaStream_t stream = nullptr;
    FaultRecord* faults = nullptr;  // mapped pinned host memory

    std::atomic<size_t> in_use{0}, peak{0}, allocations{0};
    std::atomic<size_t> limit{0};  // set_memory_limit; 0: none
    size_t total_memory = 0;       // the device's memory, read once

    std::mutex staging_mutex;
    void* pinned[2] = {nullptr, nullptr};
    cudaEvent_t pinned_ready[2] = {nullptr, nullptr};
    std::vector<PinnedBlock> h2d_blocks;
    size_t h2d_bytes = 0;

    // Graph capture (runtime.h). capture_mu guards everything below; `capturing` is also read without it.
    std::mutex capture_mu;
    std::atomic<bool> capturing{false};
    std::unordered_map<void*, size_t> graph_allocs;    // made during the capture and not freed in it yet
    std::vector<std::pair<void*, size_t>> deferred;    // other memory freed during the capture
    std::unordered_map<void*, int> orphans;            // graph allocations of failed captures (never backed)
    std::unordered_map<void*, Outliving> outliving;    // of every graph not yet destroyed
    int live_graphs = 0;                               // instantiated graphs not yet destroyed
    std::vector<std::pair<void*, size_t>> retired_ws;  // workspaces replaced while a graph may use them

    // Releases everything, after the queued work; never throws. Run by shutdown() only: at process exit the
    // contexts are left to the driver (see Contexts).
    void free_all() noexcept {
        if (!stream) return;
        (void)cudaSetDevice(device);
        (void)cudaStreamSynchronize(stream);
        for (const auto& r : retired_ws) (void)cudaFreeAsync(r.first, stream);
        for (int i = 0; i < 2; i++) {
            if (pinned_ready[i]) (void)cudaEventDestroy(pinned_ready[i]);
            if (pinned[i]) (void)cudaFreeHost(pinned[i]);
        }
        for (PinnedBlock& b : h2d_blocks) {
            (void)cudaEventDestroy(b.done);
            (void)cudaFreeHost(b.ptr);
        }
        if (faults) (void)cudaFreeHost(faults);
        (void)cudaStreamSynchronize(stream);
        (void)cudaStreamDestroy(stream);
        stream = nullptr;
        faults = nullptr;
    }
};

// What each thread has of its own on a device: cuBLAS and cuDNN handles (cuDNN forbids using one handle
// from two threads at once; cuBLAS recommends a handle per thread), cuBLAS's workspace, and dyad's scratch
// workspace, which a thread may grow (and free) between two of its own kernels while another thread's
// kernels use theirs. All of them are bound to the device's one stream.
struct ThreadState {
    int device = 0;
    cublasHandle_t cublas = nullptr;
    cudnnHandle_t cudnn = nullptr;
    void* cublas_ws = nullptr;
    size_t cublas_ws_bytes = 0;
    void* ws = nullptr;
    size_t ws_bytes = 0;
    void release() noexcept;  // below, once free_device is declared
};

// Set by shutdown() and at process exit: tensors freed after that (statics destroyed later) leave their
// memory to the driver's own cleanup instead of touching a released context.
std::atomic<bool> g_torn_down{false};
std::atomic<bool> g_shut_down{false};  // shutdown() ran: later GPU use is an error

// At process exit the contexts are not destroyed, only marked: a static destructor may run after cuDNN's
// and cuBLAS's own (cuDNN loads its sub-libraries on first use, so their destructors run before ours), and
// cudnnDestroy / cublasDestroy called then can crash after a program has finished its work. The driver
// reclaims a process's GPU memory, streams and handles when it exits. shutdown() releases them explicitly
// while everything is still loaded.
struct Contexts {
    std::vector<std::unique_ptr<Context>> all;
    Contexts() {
        const int n = device_count();
        for (int i = 0; i < n; i++) {
            all.push_back(std::make_unique<Context>());
            all.back()->device = i;
        }
    }
    ~Contexts() {
        g_torn_down.store(true);
        for (auto& c : all) (void)c.release();  // unique_ptr::release: each Context is leaked on purpose
    }
};

std::vector<std::unique_ptr<Context>>& contexts() {
    static Contexts c;
    return c.all;
}

thread_local int t_device = -1;

// The calling thread's states, one per device, released when the thread ends (a thread's handles and
// workspaces are of no use to any other). The main thread's are released at exit before any static
// object is destroyed (thread-local objects go first), while cuBLAS and cuDNN are still loaded; after
// that, t_states_gone tells a late caller (a static tensor freed at exit) that nothing is left.
struct ThreadStates {
    std::vector<std::unique_ptr<ThreadState>> per_device;
    ~ThreadStates();
};
thread_local ThreadStates t_states;
thread_local bool t_states_gone = false;  // trivially destructible: still readable during exit

// The device's context with its stream and fault record created (once).
Context& ctx(int device) {
    auto& all = contexts();
    if (g_shut_down.load())
        throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": GPU used after dyad::cuda::shutdown() released ",
                                        "dyad's GPU resources"));
    if (device < 0 || device >= int(all.size()))
        throw CudaError(::dyad::detail::str("runtime.cpp: no CUDA device ", device, " (", all.size(), " available)"));
    Context& c = *all[size_t(device)];
    std::call_once(c.stream_once, [&] {
        use_device(device);
        DYAD_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
        // Keep freed blocks in the pool instead of returning them to the driver at each sync.
        cudaMemPool_t pool;
        DYAD_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
        uint64_t threshold = UINT64_MAX;
        DYAD_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
        void* f = nullptr;
        size_t free_b = 0;
        DYAD_CUDA_CHECK(cudaMemGetInfo(&free_b, &c.total_memory));
        DYAD_CUDA_CHECK(cudaHostAlloc(&f, sizeof(FaultRecord), cudaHostAllocMapped));
        std::memset(f, 0, sizeof(FaultRecord));
        c.faults = static_cast<FaultRecord*>(f);
    });
    return c;
}

std::string mib(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return buf;
}

std::string version_str(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

// Capture hazard (3): inside a captured step nothing runs, so a wait would return before the work it
// waits for, and a copy from the host would be replayed with the host data of the capture. Such calls
// throw before touching the stream, leaving the capture intact for the caller to abandon.
void refuse_in_capture(const Context& c, int line, const char* what) {
    if (c.capturing.load())
        throw Error(::dyad::detail::str("runtime.cpp:", line, ": ", what, " inside a captured step (cuda:", c.device,
                                        " is recording the step into a CUDA graph, not running it); read results "
                                        "after the step returns and pass host data in as inputs"));
}

std::atomic<Math> g_math{Math::fp32};
std::atomic<size_t> g_host_waits{0};
std::atomic<bool> g_deterministic{false};
std::atomic<GemmKernel> g_gemm{GemmKernel::cublas};
std::atomic<ConvKernel> g_conv{ConvKernel::cudnn};

}  // namespace

// ---------------------------------------------------------------- devices
int device_count() noexcept {
    // Without a driver this returns cudaErrorInsufficientDriver (35) and leaves n untouched; without a
    // GPU, cudaErrorNoDevice. Either way: no device. The error is cleared so no later check sees it.
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

std::string device_name(int index) {
    cudaDeviceProp prop{};
    DYAD_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    return prop.name;
}

std::string runtime_version() {
    int v = 0;
    DYAD_CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return version_str(v);
}

std::string driver_version() {
    int v = 0;
    DYAD_CUDA_CHECK(cudaDriverGetVersion(&v));
    return version_str(v);
}

std::string library_versions() {
    int ma = 0, mi = 0, pa = 0;
    DYAD_CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &ma));
    DYAD_CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &mi));
    DYAD_CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &pa));
    const size_t d = cudnnGetVersion();  // 91900 = 9.19.0
    return ::dyad::detail::str("cuBLAS ", ma, ".", mi, ".", pa, ", cuDNN ", d / 10000, ".", (d % 10000) / 100, ".",
                               d % 100);
}

std::string header_versions() {
    return ::dyad::detail::str("CUDA ", CUDART_VERSION / 1000, ".", (CUDART_VERSION % 1000) / 10, ", cuBLAS ",
                               CUBLAS_VER_MAJOR, ".", CUBLAS_VER_MINOR, ".", CUBLAS_VER_PATCH, ", cuDNN ", CUDNN_MAJOR,
                               ".", CUDNN_MINOR, ".", CUDNN_PATCHLEVEL);
}

void use_device(int index) {
    if (t_device == index) return;
    DYAD_CUDA_CHECK(cudaSetDevice(index));
    t_device = index;
}

int current_device() { return t_device < 0 ? 0 : t_device; }

void release_all() noexcept {
    auto& all = contexts();
    if (g_shut_down.load()) return;
    // The calling thread's handles and workspaces first (while the runtime is up), then every device's.
    for (auto& st : t_states.per_device)
        if (st) st->release();
    t_states.per_device.clear();
    g_shut_down.store(true);
    g_torn_down.store(true);
    for (auto& c : all) {
        c->free_all();
        // The pool's cached blocks go back to the driver too.
        cudaMemPool_t pool;
        if (cudaDeviceGetDefaultMemPool(&pool, c->device) == cudaSuccess) (void)cudaMemPoolTrimTo(pool, 0);
    }
    (void)cudaGetLastError();
}

// ---------------------------------------------------------------- context
namespace {
// The calling thread's state on `device` (created on first use).
ThreadState& thread_state(int device) {
    ctx(device);  // checks the device and that the runtime is up
    if (t_states_gone)
        throw Error(::dyad::detail::str("runtime.cpp:", __LINE__,
                                        ": GPU used by a thread whose GPU state was already "
                                        "released (at its exit)"));
    auto& v = t_states.per_device;
    if (v.size() <= size_t(device)) v.resize(size_t(device) + 1);
    if (!v[size_t(device)]) {
        v[size_t(device)] = std::make_unique<ThreadState>();
        v[size_t(device)]->device = device;
    }
    return *v[size_t(device)];
}
}  // namespace

void ThreadState::release() noexcept {
    if (g_torn_down.load()) return;  // the process is going: the driver reclaims everything
    try {
        Context& c = ctx(device);
        use_device(device);
        if (cublas) (void)cublasDestroy(cublas);
        if (cudnn) (void)cudnnDestroy(cudnn);
        cublas = nullptr;
        cudnn = nullptr;
        if (cublas_ws) free_device(cublas_ws, cublas_ws_bytes, device);
        cublas_ws = nullptr;
        if (ws) {
            // A graph captured on this device may still use this thread's workspace: kept until it goes.
            std::lock_guard<std::mutex> lock(c.capture_mu);
            if (c.live_graphs > 0) {
                c.retired_ws.emplace_back(ws, ws_bytes);
                ws = nullptr;
            }
        }
        if (ws) free_device(ws, ws_bytes, device);
        ws = nullptr;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dyad: releasing a thread's GPU state failed: %s\n", e.what());
    }
}

ThreadStates::~ThreadStates() {
    for (auto& st : per_device)
        if (st) st->release();
    t_states_gone = true;
}

cudaStream_t stream() { return ctx(current_device()).stream; }

cublasHandle_t cublas() {
    const int dev = current_device();
    ThreadState& t = thread_state(dev);
    if (!t.cublas) {
        Context& c = ctx(dev);
        // A handle (and its workspace) made inside a capture would live in graph memory: the warm-up calls of
        // a captured step make it.
        refuse_in_capture(c, __LINE__, "the first GEMM (creating the cuBLAS handle) cannot run");
        cublasHandle_t h = nullptr;
        DYAD_CUBLAS_CHECK(cublasCreate(&h));
        t.cublas = h;
        DYAD_CUBLAS_CHECK(cublasSetStream(t.cublas, c.stream));  // this also resets the workspace
        // A fixed workspace of dyad's own, the size cuBLAS recommends for Hopper (4 MiB before it): with its
        // default pool cuBLAS would allocate a new workspace inside every captured graph.
        t.cublas_ws = malloc_device(size_t(32) << 20, dev);
        t.cublas_ws_bytes = size_t(32) << 20;
        DYAD_CUBLAS_CHECK(cublasSetWorkspace(t.cublas, t.cublas_ws, t.cublas_ws_bytes));
    }
    return t.cublas;
}

cudnnHandle_t cudnn() {
    const int dev = current_device();
    ThreadState& t = thread_state(dev);
    if (!t.cudnn) {
        cudnnHandle_t h = nullptr;
        DYAD_CUDNN_CHECK(cudnnCreate(&h));
        t.cudnn = h;
        DYAD_CUDNN_CHECK(cudnnSetStream(t.cudnn, ctx(dev).stream));
    }
    return t.cudnn;
}

void* workspace(size_t nbytes) {
    const int dev = current_device();
    Context& c = ctx(dev);
    ThreadState& t = thread_state(dev);
    if (nbytes <= t.ws_bytes) return t.ws;
    // Capture hazard: a block allocated now would be a graph allocation, valid only while the graph runs,
    // yet it would stay the workspace of every eager call after. The warm-up calls size the workspace.
    if (c.capturing.load())
        throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": the workspace of cuda:", dev, " (",
                                        mib(t.ws_bytes), ") would grow to ", mib(nbytes),
                                        " inside a captured step; the eager warm-up calls must size it (run the "
                                        "step eagerly with these shapes first)"));
    // Grow by at least half so a slowly rising sequence of requests does not reallocate each time. The
    // old block is freed in stream order: kernels queued before still see valid memory. A captured graph
    // may hold the old block's address in its nodes and use it at every replay: while any graph exists,
    // the old block is kept (freed when the last graph is destroyed).
    const size_t grown = std::max(nbytes, t.ws_bytes + t.ws_bytes / 2);
    if (t.ws) {
        bool keep = false;
        {
            std::lock_guard<std::mutex> lock(c.capture_mu);
            if (c.live_graphs > 0) {
                c.retired_ws.emplace_back(t.ws, t.ws_bytes);
                keep = true;
            }
        }
        if (!keep) free_device(t.ws, t.ws_bytes, dev);
    }
    t.ws = nullptr;
    t.ws_bytes = 0;
    t.ws = malloc_device(grown, dev);
    t.ws_bytes = grown;
    return t.ws;
}

FaultRecord* fault_record() { return ctx(current_device()).faults; }

// ---------------------------------------------------------------- memory
void set_device_memory_limit(int device, size_t bytes) { ctx(device).limit.store(bytes); }
size_t device_memory_limit(int device) { return ctx(device).limit.load(); }

namespace {
[[noreturn]] void throw_out_of_memory(int device, size_t nbytes, int line, const std::string& why) {
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    const PoolStats s = pool_stats(device);
    throw OutOfMemoryError(::dyad::detail::str(
        "runtime.cpp:", line, ": CUDA out of memory on cuda:", device, why, ": requested ", mib(nbytes), " (", nbytes,
        " bytes); dyad tensors hold ", mib(s.in_use), ", the memory pool reserves ", mib(s.reserved),
        ", the device has ", mib(free_b), " free of ", mib(total_b), ". Try a smaller batch size."));
}
}  // namespace

void* malloc_device(size_t nbytes, int device) {
    Context& c = ctx(device);
    use_device(device);
    const size_t limit = c.limit.load(std::memory_order_relaxed);
    if (limit && c.in_use.load(std::memory_order_relaxed) + nbytes > limit)
        throw_out_of_memory(device, nbytes, __LINE__,
                            " (over the limit of " + mib(limit) + " set with set_memory_limit)");
    // A request beyond the device's whole memory can never succeed; what the driver answers for one (out
    // of memory, or invalid value for sizes past its address space) is not ours to depend on.
    if (nbytes > c.total_memory)
        throw_out_of_memory(device, nbytes, __LINE__, " (more than the device's " + mib(c.total_memory) + " in all)");
    void* p = nullptr;
    const bool in_capture = c.capturing.load();
    cudaError_t st = cudaMallocAsync(&p, nbytes, c.stream);
    if (st == cudaErrorMemoryAllocation) {
        // Memory freed on the stream but not yet returned, or cached by the pool in blocks of other sizes:
        // wait, give the cache back to the driver, and try once more. Not inside a capture, where waiting
        // is not allowed (and the request is for graph memory, which the pool's cache does not hold).
        (void)cudaGetLastError();
        if (in_capture) throw_out_of_memory(device, nbytes, __LINE__, " (inside a captured step)");
        DYAD_CUDA_CHECK(cudaStreamSynchronize(c.stream));
        trim_pool(device);
        st = cudaMallocAsync(&p, nbytes, c.stream);
        if (st == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError();
            throw_out_of_memory(device, nbytes, __LINE__, "");
        }
    }
    DYAD_CUDA_CHECK(st);
    if (in_capture) {
        // Capture hazard (1): a graph allocation; only these may be given to cudaFreeAsync during the capture.
        std::lock_guard<std::mutex> lock(c.capture_mu);
        c.graph_allocs[p] = nbytes;
    }
    c.allocations.fetch_add(1, std::memory_order_relaxed);
    const size_t now = c.in_use.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
    size_t pk = c.peak.load(std::memory_order_relaxed);
    while (now > pk && !c.peak.compare_exchange_weak(pk, now, std::memory_order_relaxed)) {
    }
    return p;
}

namespace {
// Frees ptr on the stream, outside a capture. A graph allocation of a failed capture never had memory
// (its graph was discarded unlaunched): it is only forgotten. Such an address may be handed out again
// later, so each orphan entry is a count of frees to skip; skipping one free of a reused address delays
// the real free to the orphan tensor's own free, never frees memory twice.
void release_now(Context& c, void* ptr, size_t nbytes) {
    {
        std::lock_guard<std::mutex> lock(c.capture_mu);
        const auto it = c.orphans.find(ptr);
        if (it != c.orphans.end()) {
            if (--it->second == 0) c.orphans.erase(it);
            c.in_use.fetch_sub(nbytes, std::memory_order_relaxed);
            return;
        }
        // Capture hazard (2): freeing a graph allocation that outlived its capture from the host is allowed;
        // it ends the current incarnation (the next launch of its graph makes it again).
        const auto o = c.outliving.find(ptr);
        if (o != c.outliving.end()) {
            o->second.host_holds = false;
            o->second.live = false;
        }
    }
    const cudaError_t st = cudaFreeAsync(ptr, c.stream);
    if (st != cudaSuccess) {
        (void)cudaGetLastError();  // reported here, not by the next launch check
        // At process exit the runtime may already be gone; the memory goes with it.
        if (st != cudaErrorCudartUnloading) DYAD_CUDA_WARN(st);
    }
    c.in_use.fetch_sub(nbytes, std::memory_order_relaxed);
}
}  // namespace

void free_device(void* ptr, size_t nbytes, int device) noexcept {
    if (!ptr || g_torn_down.load()) return;
    try {
        Context& c = ctx(device);
        use_device(device);
        {
            std::lock_guard<std::mutex> lock(c.capture_mu);
            if (c.capturing.load()) {
                // Capture hazard (1): during a capture cudaFreeAsync may only be given allocations of the graph
                // being captured (it becomes a free node). Anything else (an eager tensor dropped inside the
                // step, a graph allocation of another graph) is freed on the stream after the capture ends.
                const auto it = c.graph_allocs.find(ptr);
                if (it == c.graph_allocs.end()) {
                    c.deferred.emplace_back(ptr, nbytes);
                    return;
                }
                c.graph_allocs.erase(it);
                const cudaError_t st = cudaFreeAsync(ptr, c.stream);
                if (st != cudaSuccess) {
                    // The capture was invalidated by an earlier call (the step is failing and its graph will be
                    // discarded, so nothing needs freeing); any other error is logged.
                    (void)cudaGetLastError();
                    if (st != cudaErrorStreamCaptureInvalidated) DYAD_CUDA_WARN(st);
                }
                c.in_use.fetch_sub(nbytes, std::memory_order_relaxed);
                return;
            }
        }
        release_now(c, ptr, nbytes);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dyad: freeing GPU memory failed: %s\n", e.what());
    }
}

PoolStats pool_stats(int device) {
    Context& c = ctx(device);
    PoolStats s;
    s.in_use = c.in_use.load();
    s.peak = c.peak.load();
    s.allocations = c.allocations.load();
    cudaMemPool_t pool;
    DYAD_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t reserved = 0;
    DYAD_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
    // Capture hazard (7): graph allocations come from the driver's graph memory, not from the pool.
    uint64_t graph = 0;
    DYAD_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrReservedMemCurrent, &graph));
    s.graph_reserved = size_t(graph);
    s.reserved = size_t(reserved) + s.graph_reserved;
    return s;
}

void reset_peak(int device) {
    Context& c = ctx(device);
    c.peak.store(c.in_use.load());
}

void trim_pool(int device) {
    Context& c = ctx(device);
    refuse_in_capture(c, __LINE__, "empty_cache() cannot wait for the GPU");
    use_device(device);
    DYAD_CUDA_CHECK(cudaStreamSynchronize(c.stream));
    cudaMemPool_t pool;
    DYAD_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    DYAD_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
    // Graph memory no graph uses any more (destroyed graphs, or memory freed by their launches) goes back
    // to the driver too.
    DYAD_CUDA_CHECK(cudaDeviceGraphMemTrim(device));
}

// ---------------------------------------------------------------- copies
namespace {
void ensure_staging(Context& c) {
    std::call_once(c.staging_once, [&] {
        for (int i = 0; i < 2; i++) {
            DYAD_CUDA_CHECK(cudaHostAlloc(&c.pinned[i], kStageChunk, cudaHostAllocDefault));
            DYAD_CUDA_CHECK(cudaEventCreateWithFlags(&c.pinned_ready[i], cudaEventDisableTiming));
        }
    });
}
}  // namespace

namespace {
// True when every copy recorded on `e` has finished; never waits. cudaErrorNotReady is an answer, not a
// failure, and must not linger for a later launch check.
bool event_done(cudaEvent_t e) {
    const cudaError_t st = cudaEventQuery(e);
    if (st == cudaErrorNotReady) {
        if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
        return false;
    }
    DYAD_CUDA_CHECK(st);
    return true;
}

// A free pinned block of at least n bytes (the smallest that fits), or a new one; null when the cache is
// at its cap and every block is busy.
PinnedBlock* pinned_block(Context& c, size_t n) {
    PinnedBlock* best = nullptr;
    for (PinnedBlock& b : c.h2d_blocks)
        if (b.bytes >= n && (!best || b.bytes < best->bytes) && event_done(b.done)) best = &b;
    if (best) return best;
    size_t bytes = kStageMin;
    while (bytes < n) bytes *= 2;
    if (c.h2d_bytes + bytes > kPinnedCacheMax) return nullptr;
    PinnedBlock b;
    b.bytes = bytes;
    DYAD_CUDA_CHECK(cudaHostAlloc(&b.ptr, bytes, cudaHostAllocDefault));
    DYAD_CUDA_CHECK(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming));
    c.h2d_blocks.push_back(b);
    c.h2d_bytes += bytes;
    return &c.h2d_blocks.back();
}
}  // namespace

void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device) {
    Context& c = ctx(device);
    refuse_in_capture(c, __LINE__, "a copy to the GPU (to(cuda), from_vector()) cannot copy from the host");
    use_device(device);
    if (nbytes >= kStageMin) {
        // The host copies into pinned memory and returns; the GPU copies from there when the stream gets to
        // it. The block is reused once its event has passed.
        std::lock_guard<std::mutex> lock(c.staging_mutex);
        if (PinnedBlock* b = pinned_block(c, nbytes)) {
            std::memcpy(b->ptr, src, nbytes);
            DYAD_CUDA_CHECK(cudaMemcpyAsync(dst, b->ptr, nbytes, cudaMemcpyHostToDevice, c.stream));
            DYAD_CUDA_CHECK(cudaEventRecord(b->done, c.stream));
            return;
        }
    }
    // Small copies (and a full staging cache): the driver stages pageable memory itself; the source may be
    // reused as soon as this returns.
    DYAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, c.stream));
}

void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device) {
    Context& c = ctx(device);
    refuse_in_capture(c, __LINE__, "a copy to the host (item(), to(cpu), to_vector()) cannot wait for the GPU");
    use_device(device);
    if (nbytes < kStageMin) {
        DYAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, c.stream));
        wait_stream();
        return;
    }
    // Pipelined: while chunk i is copied into one pinned buffer, chunk i-1 leaves the other one.
    std::lock_guard<std::mutex> lock(c.staging_mutex);
    ensure_staging(c);
    auto* d = static_cast<char*>(dst);
    const auto* s = static_cast<const char*>(src);
    size_t prev_off = 0, prev_len = 0;
    int buf = 0;
    for (size_t off = 0; off < nbytes; off += kStageChunk, buf ^= 1) {
        const size_t len = std::min(kStageChunk, nbytes - off);
        DYAD_CUDA_CHECK(cudaMemcpyAsync(c.pinned[buf], s + off, len, cudaMemcpyDeviceToHost, c.stream));
        DYAD_CUDA_CHECK(cudaEventRecord(c.pinned_ready[buf], c.stream));
        if (prev_len) {
            DYAD_CUDA_CHECK(cudaEventSynchronize(c.pinned_ready[buf ^ 1]));
            std::memcpy(d + prev_off, c.pinned[buf ^ 1], prev_len);
        }
        prev_off = off;
        prev_len = len;
    }
    DYAD_CUDA_CHECK(cudaEventSynchronize(c.pinned_ready[buf ^ 1]));
    std::memcpy(d + prev_off, c.pinned[buf ^ 1], prev_len);
    wait_stream();
}

void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device) {
    Context& c = ctx(device);
    use_device(device);
    DYAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, c.stream));
}

void memset_zero(void* dst, size_t nbytes, int device) {
    Context& c = ctx(device);
    use_device(device);
    DYAD_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, c.stream));
}

void synchronize(int device) {
    ctx(device);
    use_device(device);
    wait_stream();
}

void wait_stream_quietly(int device) noexcept {
    if (g_torn_down.load()) return;
    try {
        Context& c = ctx(device);
        if (c.capturing.load()) return;
        use_device(device);
        g_host_waits.fetch_add(1, std::memory_order_relaxed);
        DYAD_CUDA_WARN(cudaStreamSynchronize(c.stream));
    } catch (...) {
        // A context that cannot be made has no queued work to wait for.
    }
}

void wait_stream() {
    const int dev = current_device();
    Context& c = ctx(dev);
    refuse_in_capture(c, __LINE__, "synchronize() (or all_finite()) cannot wait for the GPU");
    g_host_waits.fetch_add(1, std::memory_order_relaxed);
    DYAD_CUDA_CHECK(cudaStreamSynchronize(c.stream));
    check_faults(dev);
}

size_t host_wait_count() { return g_host_waits.load(); }

// ---------------------------------------------------------------- graph capture
namespace {

// What capture_end hands out: the graph is kept with its executable graph (a graph with memory nodes
// may have one executable graph at a time; keeping both until graph_destroy keeps that simple).
struct CapturedGraph {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    int device = 0;
    std::vector<void*> outliving;  // its allocations that outlived the capture (Context::outliving)
    bool launched = false;         // a launch has been queued (its allocations have memory)
};

// Leaves capture state on `c` after the stream has left capture mode. Graph allocations still alive
// after a failed capture become orphans (see release_now); the frees deferred by free_device run now,
// in stream order, outside the capture. Never throws.
void finish_capture(Context& c, bool ok) noexcept {
    std::vector<std::pair<void*, size_t>> deferred;
    try {
        std::lock_guard<std::mutex> lock(c.capture_mu);
        if (!ok)
            for (const auto& a : c.graph_allocs) c.orphans[a.first]++;
        c.graph_allocs.clear();
        deferred.swap(c.deferred);
        c.capturing.store(false);
    } catch (const std::exception& e) {
        c.capturing.store(false);
        std::fprintf(stderr, "dyad: ending a capture on cuda:%d: %s\n", c.device, e.what());
    }
    for (const auto& [p, n] : deferred) {
        try {
            release_now(c, p, n);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "dyad: freeing GPU memory after a capture failed: %s\n", e.what());
        }
    }
}

}  // namespace

void capture_begin(int device) {
    Context& c = ctx(device);
    use_device(device);
    std::lock_guard<std::mutex> lock(c.capture_mu);
    if (c.capturing.load())
        throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": capture_begin: cuda:", device,
                                        " is capturing already (captured steps do not nest)"));
    // ThreadLocal: an unsafe call (a synchronous copy, cudaMalloc) made by this thread during the capture
    // fails and invalidates it, instead of silently running outside the graph.
    DYAD_CUDA_CHECK(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
    c.graph_allocs.clear();
    c.deferred.clear();
    c.capturing.store(true);
}

void* capture_end(int device) {
    Context& c = ctx(device);
    use_device(device);
    if (!c.capturing.load())
        throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": capture_end: cuda:", device, " is not capturing"));
    auto handle = std::make_unique<CapturedGraph>();  // before anything that would need undoing
    handle->device = device;
    cudaGraph_t graph = nullptr;
    // An invalidated capture ends here too: the status says so and no graph comes back.
    const cudaError_t end_st = cudaStreamEndCapture(c.stream, &graph);
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst_st = cudaSuccess;
    if (end_st == cudaSuccess && graph) {
        // Capture hazard (2): graph allocations that outlive the step (the loss, gradients) are freed and
        // made again at the same addresses by each launch; without this flag a relaunch would fail.
        inst_st = cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch);
        if (inst_st != cudaSuccess) exec = nullptr;
    }
    if (end_st != cudaSuccess || inst_st != cudaSuccess) (void)cudaGetLastError();  // reported below
    const bool ok = exec != nullptr;
    if (!ok && graph) DYAD_CUDA_WARN(cudaGraphDestroy(graph));
    if (ok) {
        // Graph allocations not freed inside the capture outlive it: recorded before finish_capture forgets them.
        std::lock_guard<std::mutex> lock(c.capture_mu);
        handle->outliving.reserve(c.graph_allocs.size());
        for (const auto& a : c.graph_allocs) {
            handle->outliving.push_back(a.first);
            c.outliving[a.first] = Outliving{handle.get(), true, false};
        }
    }
    finish_capture(c, ok);
    if (end_st != cudaSuccess)
        detail::throw_gpu("CUDA", "cudaStreamEndCapture(c.stream, &graph)", __FILE__, __LINE__,
                          static_cast<int>(end_st), cudaGetErrorString(end_st));
    if (inst_st != cudaSuccess)
        detail::throw_gpu("CUDA",
                          "cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch)",
                          __FILE__, __LINE__, static_cast<int>(inst_st), cudaGetErrorString(inst_st));
    if (!ok)
        throw CudaError(::dyad::detail::str("runtime.cpp:", __LINE__, ": capture_end: cuda:", device,
                                            ": the capture produced no graph"));
    handle->graph = graph;
    handle->exec = exec;
    {
        std::lock_guard<std::mutex> lock(c.capture_mu);
        c.live_graphs++;
    }
    return handle.release();
}

void capture_abort(int device) noexcept {
    try {
        Context& c = ctx(device);
        use_device(device);
        if (!c.capturing.load()) return;
        cudaGraph_t graph = nullptr;
        const cudaError_t st = cudaStreamEndCapture(c.stream, &graph);
        if (st != cudaSuccess) {
            (void)cudaGetLastError();  // an invalidated capture is the expected case here
            if (st != cudaErrorStreamCaptureInvalidated) DYAD_CUDA_WARN(st);
        }
        if (graph) DYAD_CUDA_WARN(cudaGraphDestroy(graph));
        finish_capture(c, false);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dyad: abandoning a capture on cuda:%d failed: %s\n", device, e.what());
    }
}

void graph_launch(void* graph, int device) {
    auto* g = static_cast<CapturedGraph*>(graph);
    if (!g || g->device != device)
        throw Error(
            ::dyad::detail::str("runtime.cpp:", __LINE__, ": graph_launch: no graph captured on cuda:", device));
    Context& c = ctx(device);
    refuse_in_capture(c, __LINE__, "a captured step cannot be launched");
    use_device(device);
    DYAD_CUDA_CHECK(cudaGraphLaunch(g->exec, c.stream));
    g->launched = true;
    // The launch (re)made every allocation that outlives the graph (freeing the previous incarnations first).
    std::lock_guard<std::mutex> lock(c.capture_mu);
    for (void* p : g->outliving) {
        const auto o = c.outliving.find(p);
        if (o != c.outliving.end() && o->second.owner == g) o->second.live = true;
    }
}

void graph_destroy(void* graph) noexcept {
    auto* g = static_cast<CapturedGraph*>(graph);
    if (!g) return;
    // At process exit the runtime and its graphs may already be gone.
    if (!g_torn_down.load()) {
        try {
            Context& c = ctx(g->device);
            use_device(g->device);
            // A launch may still be running: wait for it (not counted as a host wait; skipped while the
            // stream is capturing, where waiting is not allowed and the driver frees the executable graph
            // once its launches finish).
            if (!c.capturing.load()) DYAD_CUDA_WARN(cudaStreamSynchronize(c.stream));
            DYAD_CUDA_WARN(cudaGraphExecDestroy(g->exec));
            DYAD_CUDA_WARN(cudaGraphDestroy(g->graph));
            // Destroying a graph frees none of its live allocations. Those a host tensor still holds (gradients
            // kept by parameters, the static output) stay valid and are freed by free_device like any other
            // allocation; incarnations made by a launch after the host freed the capture's tensor belong to
            // no one and are freed here (on the stream; after the capture if one is running).
            std::vector<std::pair<void*, size_t>> unowned, retired;
            {
                std::lock_guard<std::mutex> lock(c.capture_mu);
                for (void* p : g->outliving) {
                    const auto o = c.outliving.find(p);
                    if (o == c.outliving.end() || o->second.owner != g) continue;
                    if (o->second.live && !o->second.host_holds) unowned.emplace_back(p, 0);
                    // A graph destroyed before its first launch (the launch failed): the tensors made during
                    // the capture never had memory, and their address may be handed to a later graph. Their
                    // frees are skipped, as after a failed capture.
                    if (!g->launched && o->second.host_holds) c.orphans[p]++;
                    c.outliving.erase(o);
                }
                if (c.capturing.load()) {
                    c.deferred.insert(c.deferred.end(), unowned.begin(), unowned.end());
                    unowned.clear();
                }
                if (--c.live_graphs == 0) retired.swap(c.retired_ws);
            }
            for (const auto& u : unowned) release_now(c, u.first, u.second);  // 0 bytes: not in in_use
            for (const auto& [p, n] : retired) free_device(p, n, g->device);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "dyad: destroying a captured graph failed: %s\n", e.what());
        }
    }
    delete g;
}

bool capturing(int device) { return ctx(device).capturing.load(); }

bool detail::current_stream_capturing() noexcept {
    try {
        return ctx(current_device()).capturing.load();
    } catch (...) {
        return false;
    }
}

// ---------------------------------------------------------------- settings
void set_math(Math m) { g_math.store(m); }
Math math() { return g_math.load(); }
void set_deterministic(bool on) { g_deterministic.store(on); }
bool deterministic() { return g_deterministic.load(); }
void set_gemm_kernel(GemmKernel g) { g_gemm.store(g); }
GemmKernel gemm_kernel() { return g_gemm.load(); }
void set_conv_kernel(ConvKernel c) { g_conv.store(c); }
ConvKernel conv_kernel() { return g_conv.load(); }

// ---------------------------------------------------------------- timing
EventPair event_pair_create() {
    EventPair e;
    cudaEvent_t a = nullptr, b = nullptr;
    DYAD_CUDA_CHECK(cudaEventCreate(&a));
    DYAD_CUDA_CHECK(cudaEventCreate(&b));
    e.start = a;
    e.stop = b;
    return e;
}

void event_pair_destroy(EventPair& e) noexcept {
    if (e.start) DYAD_CUDA_WARN(cudaEventDestroy(static_cast<cudaEvent_t>(e.start)));
    if (e.stop) DYAD_CUDA_WARN(cudaEventDestroy(static_cast<cudaEvent_t>(e.stop)));
    e = EventPair{};
}

void event_record(void* event) { DYAD_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), stream())); }

float event_elapsed_ms(const EventPair& e) {
    g_host_waits.fetch_add(1, std::memory_order_relaxed);
    DYAD_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e.stop)));
    float ms = 0.0f;
    DYAD_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(e.start), static_cast<cudaEvent_t>(e.stop)));
    return ms;
}

// ---------------------------------------------------------------- faults
void check_faults(int device) {
    Context& c = ctx(device);
    volatile FaultRecord* f = c.faults;
    const int32_t code = f->code;
    if (code == 0) return;
    const long long a = f->a, b = f->b, n = f->c;
    f->code = 0;
    switch (Fault(code)) {
        case Fault::label_out_of_range:
            throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": cross_entropy (found on cuda:", device,
                                            " at the next synchronisation): label ", a, " at index ", b,
                                            " is out of range [0, ", n, ") for ", n, " classes"));
        case Fault::gather_index_out_of_range:
        case Fault::index_select_out_of_range:
            throw Error(::dyad::detail::str("runtime.cpp:", __LINE__, ": ",
                                            Fault(code) == Fault::gather_index_out_of_range ? "gather" : "index_select",
                                            " (found on cuda:", device, " at the next synchronisation): index ", a,
                                            " at position ", b, " is out of range [0, ", n, ") for a dim of size ", n));
        case Fault::none:
            break;
    }
    throw Error(::dyad::detail::str("cuda:", device, ": a kernel reported fault code ", code));
}

}  // namespace dyad::cuda
