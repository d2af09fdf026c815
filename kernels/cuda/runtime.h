// CUDA runtime: devices, the per-device stream, memory, copies, settings and deferred kernel faults. No
// CUDA types in this header, so lib/ (plain C++) includes it. Every call runs on the device's dyad stream
// and every status is checked (failures throw dyad::CudaError with statement, file and line).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dyad::cuda {

// ---------------------------------------------------------------- devices
// Number of usable GPUs; 0 when the driver or a GPU is missing. Never throws.
int device_count() noexcept;
std::string device_name(int index);
std::string runtime_version();   // "13.0"
std::string driver_version();    // "13.0" (what the driver supports)
std::string library_versions();  // "cuBLAS 13.1.0, cuDNN 9.19.0", as loaded
std::string header_versions();   // "CUDA 13.0, cuBLAS 13.1.0, cuDNN 9.19.0", as compiled against
// Makes `index` the device that kernel launchers use on this thread (cudaSetDevice only on a change).
void use_device(int index);
int current_device();
// Waits for every device's stream, then releases dyad's streams, cuBLAS and cuDNN handles, workspaces,
// pinned buffers and the pool's cached memory. Later GPU use throws; GPU memory freed later is left to the
// driver. Never throws; a second call does nothing.
void release_all() noexcept;  // dyad::cuda::shutdown()

// ---------------------------------------------------------------- memory
// Stream-ordered allocation from the device's memory pool (cudaMallocAsync on the dyad stream, release
// threshold at the maximum so freed memory stays cached). Out of memory throws dyad::CudaError naming
// the request, what dyad holds, what the pool reserves and what the device has free.
void* malloc_device(size_t nbytes, int device);
void free_device(void* ptr, size_t nbytes, int device) noexcept;  // logs instead of throwing
struct PoolStats {
    size_t in_use = 0;          // bytes in live dyad allocations
    size_t peak = 0;            // high-water mark of in_use since start or the last reset
    size_t reserved = 0;        // bytes the pool holds from the driver (in use + cached)
    size_t allocations = 0;     // number of malloc_device calls
    size_t graph_reserved = 0;  // bytes the driver holds for CUDA graph allocations (included in reserved)
};
PoolStats pool_stats(int device);
void reset_peak(int device);
void trim_pool(int device);  // returns cached, unused memory to the driver (synchronises the device)
// A cap on the bytes dyad tensors hold on `device` (0: none); malloc_device throws OutOfMemoryError past it.
void set_device_memory_limit(int device, size_t bytes);
size_t device_memory_limit(int device);

// ---------------------------------------------------------------- copies and synchronisation
// Host to device: large transfers go through pinned staging buffers in chunks, so the call returns once
// the host data has been read (the GPU copy may still be running). Device to host waits for the stream.
void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device);
void memset_zero(void* dst, size_t nbytes, int device);
// Waits for the device's stream, then reports any fault a kernel recorded (see check_faults).
void synchronize(int device);

// Every host wait goes through here (counted for tests and diagnostics): waits for the stream, then
// reports any pending fault.
void wait_stream();
// For destructors (the deleter of a Tensor::from_blob on a GPU runs after the work queued on it): waits for
// the device's stream (counted like wait_stream) without reporting faults. Never throws; does nothing
// during a capture (a wait would invalidate it) or after teardown.
void wait_stream_quietly(int device) noexcept;
size_t host_wait_count();

// ---------------------------------------------------------------- graph capture
// Recording the work queued on a device's stream into a CUDA graph and replaying it (dyad/capture.h
// builds training steps on these). Between capture_begin and capture_end nothing runs: every launch,
// copy, memset, allocation and free queued on the stream becomes a node of the graph.
//
// Memory during a capture: malloc_device makes graph allocations (cudaMallocAsync under capture), owned
// by the graph. free_device gives such a pointer to cudaFreeAsync (a free node in the graph); any other
// pointer (an eager allocation dropped inside the step) is kept on a list and freed on the stream after
// the capture ends, successful or not. Graph allocations still alive when the capture ends (the loss,
// gradients made by backward) keep their addresses for the life of the graph but have memory only once
// the graph has been launched: launch it right after capture_end, before anything reads them. Each later
// launch frees them and makes them again at the same addresses (cudaGraphInstantiateFlagAutoFreeOnLaunch),
// so their contents are those of the latest launch. Freeing one later from the host (free_device outside
// a capture) is allowed. If a capture fails, its graph allocations never get memory: free_device then
// only forgets them.
//
// Inside a capture wait_stream, synchronize, memcpy_d2h, memcpy_h2d and trim_pool throw dyad::Error before
// touching the stream, the workspace may not grow (it throws), and cuDNN's algorithm search throws: those
// are done by eager warm-up calls. A capture is per device and must be driven from one thread, with no
// other thread queueing work on that device meanwhile.
void capture_begin(int device);  // throws if the device is capturing already
// Ends the capture and instantiates the graph; returns the executable graph. On failure (the capture was
// invalidated, instantiation failed) it cleans up (graph destroyed, capture state cleared) and throws.
void* capture_end(int device);
// Ends a capture whose step failed, discarding what was recorded; never throws (logs instead).
void capture_abort(int device) noexcept;
void graph_launch(void* graph, int device);  // on the device's stream, after the work queued there
void graph_destroy(void* graph) noexcept;    // null is a no-op
// Whether `device` is between capture_begin and capture_end / capture_abort.
bool capturing(int device);

// ---------------------------------------------------------------- settings
// Math used by cuBLAS and cuDNN: strict FP32 (FMA only, the default and what every test uses), TF32
// tensor cores, or bf16. bf16: GEMMs (cuBLAS) round their inputs to bf16 and accumulate in FP32;
// convolutions run as in tf32, because the only down-conversion cuDNN's legacy API offers for FP32 tensors
// (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) is to FP16, whose range ends at 65504, not to bf16.
enum class Math { fp32, tf32, bf16 };
void set_math(Math m);
Math math();
// Deterministic mode: cuDNN only uses algorithms that give bit-identical results run to run.
void set_deterministic(bool on);
bool deterministic();
// GEMM: cuBLAS (default) or dyad's own tiled kernel. Convolution: cuDNN (default) or im2col + GEMM.
enum class GemmKernel { cublas, tiled };
void set_gemm_kernel(GemmKernel g);
GemmKernel gemm_kernel();
enum class ConvKernel { cudnn, im2col };
void set_conv_kernel(ConvKernel c);
ConvKernel conv_kernel();

// ---------------------------------------------------------------- timing
// CUDA events on the dyad stream of the current device.
struct EventPair {
    void* start = nullptr;
    void* stop = nullptr;
};
EventPair event_pair_create();
void event_pair_destroy(EventPair& e) noexcept;
void event_record(void* event);
float event_elapsed_ms(const EventPair& e);  // waits for stop

// ---------------------------------------------------------------- deferred kernel faults
// A kernel that finds bad data it cannot report at once (a label out of range, found on the GPU without
// a host round trip) records a fault; the next synchronisation point (synchronize, a copy to the host)
// throws it as a dyad::Error. Codes:
// label_out_of_range: (label, row, classes); gather_index_out_of_range and index_select_out_of_range:
// (index value, its position in the index, the size of the indexed dim).
enum class Fault : int32_t {
    none = 0,
    label_out_of_range = 1,
    gather_index_out_of_range = 2,
    index_select_out_of_range = 3,
};
// Throws if a fault is pending on `device` (and clears it). Called after every host wait.
void check_faults(int device);

}  // namespace dyad::cuda
