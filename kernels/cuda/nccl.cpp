// NCCL collectives for GPU ranks (kernels/cuda/nccl.h). Every NCCL and CUDA status is checked with the
// call, its message, and the file and line.
#include "kernels/cuda/nccl.h"

#include <nccl.h>

#include <vector>

#include "kernels/cuda/context.h"

#define DYAD_NCCL_CHECK(expr) DYAD_GPU_CHECK_("NCCL", expr, ncclSuccess, ncclGetErrorString)

namespace dyad::cuda::nccl {

namespace {

struct State {
    ncclComm_t comm = nullptr;
    int device = -1;
    cudaStream_t stream = nullptr;  // NCCL's stream, apart from the dyad stream
    // Events of started sums by handle (reused once joined), and two for ordering.
    std::vector<cudaEvent_t> events;
    std::vector<bool> busy;
    cudaEvent_t before = nullptr, after = nullptr;
};

State& st() {
    static State s;
    return s;
}

// Every call runs on the communicator's GPU, whatever device the caller's last op used.
void require_comm(const char* what) {
    DYAD_CHECK(st().comm != nullptr, "dist: ", what, " of a GPU tensor before the NCCL communicator exists");
    use_device(st().device);
}

ncclDataType_t nccl_type(DType d) {
    switch (d) {
        case DType::float32:
            return ncclFloat32;
        case DType::float64:
            return ncclFloat64;
        case DType::int32:
            return ncclInt32;
        case DType::int64:
            return ncclInt64;
        default:
            break;
    }
    throw Error(std::string("dist: NCCL does not reduce ") + dtype_name(d) + " here (float32, float64, int32, int64)");
}

cudaEvent_t new_event() {
    cudaEvent_t e = nullptr;
    DYAD_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
}

// NCCL's stream waits for the work queued so far on the dyad stream.
void fork_from_dyad_stream() {
    DYAD_CUDA_CHECK(cudaEventRecord(st().before, stream()));
    DYAD_CUDA_CHECK(cudaStreamWaitEvent(st().stream, st().before, 0));
}

// The dyad stream waits for what is queued on NCCL's stream up to event e (recorded there now).
void join_on(cudaEvent_t e) {
    DYAD_CUDA_CHECK(cudaEventRecord(e, st().stream));
    DYAD_CUDA_CHECK(cudaStreamWaitEvent(stream(), e, 0));
}

}  // namespace

void ensure_comm(int rank, int world, int device, const ShareBytes& share) {
    State& s = st();
    if (s.comm) {
        DYAD_CHECK(device == s.device, "dist: a collective of a tensor on GPU ", device,
                   ", but this rank's NCCL communicator is on GPU ", s.device, " (one GPU per rank)");
        return;
    }
    ncclUniqueId id{};
    if (rank == 0) DYAD_NCCL_CHECK(ncclGetUniqueId(&id));
    share(&id, sizeof id);
    use_device(device);
    s.device = device;
    DYAD_NCCL_CHECK(ncclCommInitRank(&s.comm, world, id, rank));
    DYAD_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    s.before = new_event();
    s.after = new_event();
}

bool has_comm() { return st().comm != nullptr; }

void all_reduce(void* data, int64_t count, DType dtype, Op op) {
    require_comm("all_reduce");
    if (count == 0) return;
    const ncclRedOp_t nop = op == Op::max ? ncclMax : op == Op::min ? ncclMin : ncclSum;
    fork_from_dyad_stream();
    DYAD_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), nccl_type(dtype), nop, st().comm, st().stream));
    join_on(st().after);
}

void broadcast(void* data, int64_t count, DType dtype, int root) {
    require_comm("broadcast");
    if (count == 0) return;
    fork_from_dyad_stream();
    DYAD_NCCL_CHECK(ncclBroadcast(data, data, size_t(count), nccl_type(dtype), root, st().comm, st().stream));
    join_on(st().after);
}

int start_sum(void* data, int64_t count, DType dtype) {
    require_comm("all_reduce");
    State& s = st();
    size_t id = 0;
    while (id < s.busy.size() && s.busy[id]) id++;
    if (id == s.busy.size()) {
        s.events.push_back(new_event());
        s.busy.push_back(false);
    }
    s.busy[id] = true;
    if (count > 0) {
        fork_from_dyad_stream();
        DYAD_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), nccl_type(dtype), ncclSum, s.comm, s.stream));
    }
    DYAD_CUDA_CHECK(cudaEventRecord(s.events[id], s.stream));
    return int(id);
}

void join(int handle) {
    require_comm("all_reduce");
    State& s = st();
    DYAD_CHECK(handle >= 0 && size_t(handle) < s.busy.size() && s.busy[size_t(handle)], "dist: NCCL request ", handle,
               " was not started");
    DYAD_CUDA_CHECK(cudaStreamWaitEvent(stream(), s.events[size_t(handle)], 0));
    s.busy[size_t(handle)] = false;
}

void destroy() {
    State& s = st();
    if (!s.comm) return;
    // The pending collectives end first; errors here are reported, not thrown (shutdown).
    use_device(s.device);
    DYAD_CUDA_WARN(cudaStreamSynchronize(s.stream));
    for (cudaEvent_t e : s.events) DYAD_CUDA_WARN(cudaEventDestroy(e));
    DYAD_CUDA_WARN(cudaEventDestroy(s.before));
    DYAD_CUDA_WARN(cudaEventDestroy(s.after));
    DYAD_CUDA_WARN(cudaStreamDestroy(s.stream));
    const ncclResult_t rc = ncclCommDestroy(s.comm);
    if (rc != ncclSuccess) std::fprintf(stderr, "dyad: ncclCommDestroy: %s\n", ncclGetErrorString(rc));
    s = State{};
}

}  // namespace dyad::cuda::nccl
