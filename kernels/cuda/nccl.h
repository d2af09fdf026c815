// GPU ranks' collectives over NCCL, compiled when the build has NCCL (DYAD_WITH_NCCL; cmake/DyadMpi.cmake).
// A plain C++ interface without CUDA types: lib/dist calls it, MPI bootstraps it.
//
// Ordering without host waits: a collective runs on NCCL's own stream after the work queued so far on the
// current dyad stream (an event recorded there, waited for on NCCL's stream), and work queued on the dyad
// stream after join() waits for it. Nothing here blocks the host or reads back from the GPU, so a
// collective can be captured into a CUDA graph with the step that issues it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "dyad/tensor.h"

namespace dyad::cuda::nccl {

// Sends `size` bytes from rank 0 to every rank (the caller's MPI broadcast).
using ShareBytes = std::function<void(void* bytes, size_t size)>;
// Makes the communicator of the job's `world` ranks on GPU `device` on first use (rank 0 makes the unique
// id, `share` gives it to every rank). Collective: every rank calls it at the same point. A rank has one
// GPU: a later call for another device throws.
void ensure_comm(int rank, int world, int device, const ShareBytes& share);
bool has_comm();

enum class Op { sum, max, min };
// In place over the ranks: data (count elements of dtype, float32/float64/int32/int64, device memory).
// Ordered as the header says; the dyad stream waits for the result.
void all_reduce(void* data, int64_t count, DType dtype, Op op);
void broadcast(void* data, int64_t count, DType dtype, int root);
// (The data must be on the communicator's GPU; every call runs there.)

// DataParallel's buckets: start_sum orders a sum after the work queued so far and returns at once (the dyad
// stream goes on with backward); join(handle) makes the dyad stream wait for it.
int start_sum(void* data, int64_t count, DType dtype);
void join(int handle);

// Frees the communicator, its stream and events (dist::finalize).
void destroy();

}  // namespace dyad::cuda::nccl
