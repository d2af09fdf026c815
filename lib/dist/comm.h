// Inside dyad: non-blocking sums over the ranks, for DataParallel's gradient buckets. A request is started
// on every rank in the same order, progresses while the rank calls test() (MPI progresses a non-blocking
// collective only inside MPI calls), and completes in wait(), which ends the job after dist::timeout()
// like every collective. Without MPI (or with one rank) a request is complete when it starts.
#pragma once
#include <cstdint>
#include <string>

#include "dyad/tensor.h"

namespace dyad::dist::detail {

// Starts the in-place sum over the ranks of count elements of dtype (float32 or float64) at data (on
// `device`: CPU memory over MPI, GPU memory over NCCL where the build has it), which
// must stay valid and untouched until the request completes. `what` names it in a timeout's message.
// Returns the request's id, or -1 when there is nothing to wait for.
int start_sum(void* data, int64_t count, DType dtype, Device device, const std::string& what);
// Requests of GPU buckets (NCCL) are numbered from here: test() is always true for them (NCCL progresses on
// its own stream) and wait() makes the current GPU stream wait, not the host.
constexpr int kGpuRequest = 1 << 20;
// Progresses the request; true once it has completed (the id is then free for reuse).
bool test(int request);
// Until the request completes.
void wait(int request);

}  // namespace dyad::dist::detail
