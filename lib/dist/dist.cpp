// dyad::dist over MPI (DYAD_WITH_MPI=1), or one process alone. Every MPI call's status is checked: the
// communicator returns errors (MPI_ERRORS_RETURN) instead of aborting, and a failure becomes a dyad::Error
// naming the call, MPI's message, and the file and line.
#include "dyad/dist.h"

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/error.h"
#include "lib/dist/comm.h"

#ifndef DYAD_WITH_MPI
#define DYAD_WITH_MPI 0  // set to 1 for this file by lib/CMakeLists.txt when the build has MPI
#endif
#ifndef DYAD_WITH_NCCL
#define DYAD_WITH_NCCL 0  // 1 where the build has NCCL (GPU ranks; lib/CMakeLists.txt)
#endif
#if DYAD_WITH_NCCL
#include "kernels/cuda/nccl.h"
#endif
#if DYAD_WITH_MPI
#define OMPI_SKIP_MPICXX 1   // the C API only: Open MPI's and MPICH's deprecated C++ bindings warn
#define MPICH_SKIP_MPICXX 1  // under -Wcast-function-type
#include <mpi.h>
#endif

namespace dyad::dist {

namespace {

struct State {
    bool initialized = false;
    bool finalized = false;
    bool owns_mpi = false;  // init() called MPI_Init_thread, so finalize() calls MPI_Finalize
    int rank = 0, world = 1, local_rank = 0, local_size = 1;
    double timeout_s = 300;    // DYAD_DIST_TIMEOUT or set_timeout()
    uint64_t collectives = 0;  // collectives started on this rank (the number in a timeout's message)
#if DYAD_WITH_MPI
    MPI_Comm world_comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: dyad's traffic apart from the program's
    // Non-blocking collectives in flight, by detail::Request id (MPI_REQUEST_NULL: free slot), and what each
    // one is, for the timeout's message.
    std::vector<MPI_Request> requests;
    std::vector<std::string> request_what;
#endif
};

State& state() {
    static State s;
    return s;
}

// The number of ranks the launcher started, from the variables mpirun (Open MPI, MPICH's Hydra, MVAPICH)
// and srun set; 1 when none is set.
constexpr const char* kLauncherVariables[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"};

int launched_ranks() {
    for (const char* name : kLauncherVariables) {
        const char* v = std::getenv(name);
        if (v && *v) {
            const int n = std::atoi(v);
            if (n > 1) return n;
        }
    }
    return 1;
}

bool launcher_variable_set() {
    for (const char* name : kLauncherVariables) {
        const char* v = std::getenv(name);
        if (v && *v) return true;
    }
    return false;
}

void require_init(const char* what) {
    DYAD_CHECK(state().initialized && !state().finalized, "dist::", what, ": call dist::init() first",
               state().finalized ? " (dist::finalize() has already run)" : "");
}

// t: defined, contiguous, on the CPU, of a dtype MPI reduces.
void check_tensor(const char* what, const Tensor& t) {
    DYAD_CHECK(t.defined(), "dist::", what, ": the tensor is undefined");
    DYAD_CHECK(t.device().is_cpu() || DYAD_WITH_NCCL, "dist::", what, ": the tensor is on ", t.device().str(),
               "; this build reduces CPU tensors only (GPU tensors need NCCL and the CUDA backend: ",
               "cmake's 'dyad: NCCL' line says why it is off)");
    DYAD_CHECK(t.is_contiguous(), "dist::", what, ": the tensor must be contiguous, got shape ", shape_str(t.shape()),
               " with other strides (call contiguous() first)");
    const DType d = t.dtype();
    DYAD_CHECK(d == DType::float32 || d == DType::float64 || d == DType::int32 || d == DType::int64, "dist::", what,
               ": dtype ", dtype_name(d), " is not reduced (float32, float64, int32 or int64)");
}

#if DYAD_WITH_MPI
#define DYAD_MPI_CALL(call)                                                         \
    do {                                                                            \
        const int dyad_rc_ = (call);                                                \
        if (dyad_rc_ != MPI_SUCCESS) mpi_fail(#call, dyad_rc_, __FILE__, __LINE__); \
    } while (0)

[[noreturn]] void mpi_fail(const char* call, int rc, const char* file, int line) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof text, "error %d", rc);
    throw Error(std::string(call) + " failed on rank " + std::to_string(state().rank) + ": " + text + " (" + file +
                ":" + std::to_string(line) + ")");
}

MPI_Datatype mpi_type(DType d) {
    switch (d) {
        case DType::float32:
            return MPI_FLOAT;
        case DType::float64:
            return MPI_DOUBLE;
        case DType::int32:
            return MPI_INT32_T;
        case DType::int64:
            return MPI_INT64_T;
        default:
            break;
    }
    return MPI_DATATYPE_NULL;  // check_tensor refused it
}

MPI_Op mpi_op(ReduceOp op) {
    switch (op) {
        case ReduceOp::max:
            return MPI_MAX;
        case ReduceOp::min:
            return MPI_MIN;
        case ReduceOp::sum:
        case ReduceOp::mean:
            break;
    }
    return MPI_SUM;
}

using Clock = std::chrono::steady_clock;

// A collective that waited longer than the timeout: some rank died, stopped calling collectives, or is in
// a different one. Nothing can be recovered (MPI cannot cancel a collective), so the job ends: this rank
// says which collective it waited in, and MPI_Abort ends every rank.
[[noreturn]] void time_out(const std::string& what, double waited) {
    const State& s = state();
    std::fprintf(stderr,
                 "dyad::dist: rank %d of %d: %s has waited %.1f s for the other ranks (timeout %g s, from "
                 "DYAD_DIST_TIMEOUT or dist::set_timeout): a rank has died, stopped, or is in another "
                 "collective. Aborting every rank.\n",
                 s.rank, s.world, what.c_str(), waited, s.timeout_s);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    std::abort();  // MPI_Abort does not return; this is for the compiler
}

// Drives req to completion: MPI_Test in a loop (a non-blocking collective progresses only while the rank
// calls into MPI), yielding the core after a short spin so that ranks sharing cores do not starve each
// other, and ending the job after the timeout.
void wait_request(MPI_Request& req, const std::string& what) {
    const auto t0 = Clock::now();
    for (int spins = 0;; spins++) {
        int done = 0;
        DYAD_MPI_CALL(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) return;
        if (spins < 1000) continue;
        const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
        if (waited > state().timeout_s) time_out(what, waited);
        if (waited > 0.01)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        else
            std::this_thread::yield();
    }
}

// "collective #7, all_reduce (sum) of float32 [7, 11, 13]": the number counts the collectives this rank
// has called (start_collective()), so that ranks' messages show who is behind.
void start_collective() { state().collectives++; }
std::string describe(const char* what, const char* detail, const Tensor* t) {
    std::string d = "collective #" + std::to_string(state().collectives) + ", " + what;
    if (detail && *detail) d += std::string(" (") + detail + ")";
    if (t) d += std::string(" of ") + dtype_name(t->dtype()) + " " + shape_str(t->shape());
    return d;
}

// MPI counts are int: larger tensors would need chunking, which no caller needs yet.
int mpi_count(const char* what, int64_t n) {
    DYAD_CHECK(n <= INT_MAX, "dist::", what, ": ", n, " elements exceed MPI's count limit (", INT_MAX, ")");
    return int(n);
}

// Every rank's (numel, dtype, root or op) must agree: max and min of each over the ranks, in one small
// all-reduce, are equal exactly when they do. A mismatch throws on every rank, naming this rank's values and
// the range over the ranks.
void check_same_everywhere(const char* what, const char* extra_name, const Tensor& t, int64_t extra) {
    const int64_t mine[4] = {t.numel(), int64_t(t.dtype()), extra, t.device().is_cuda() ? 1 : 0};
    int64_t both[8] = {mine[0], mine[1], mine[2], mine[3], -mine[0], -mine[1], -mine[2], -mine[3]};
    MPI_Request req = MPI_REQUEST_NULL;
    DYAD_MPI_CALL(MPI_Iallreduce(MPI_IN_PLACE, both, 8, MPI_INT64_T, MPI_MAX, state().world_comm, &req));
    wait_request(req, describe(what, extra_name, &t) + " (comparing the ranks' shapes)");
    for (int i = 0; i < 4; i++)
        if (both[i] != -both[i + 4]) {
            const char* field = i == 0   ? "element counts"
                                : i == 1 ? "dtypes"
                                : i == 2 ? "roots or reductions"
                                         : "devices (CPU on some ranks, GPU on others)";
            throw Error("dist::" + std::string(what) + ": the ranks' " + field + " differ (rank " +
                        std::to_string(state().rank) + ": shape " + shape_str(t.shape()) + ", " +
                        dtype_name(t.dtype()) + "; over the ranks the value ranges " + std::to_string(-both[i + 4]) +
                        " to " + std::to_string(both[i]) + ")");
        }
}

#if DYAD_WITH_NCCL
// The NCCL communicator, made on the first GPU collective (every rank reaches it at the same point: the
// collectives' order is the same everywhere); its id travels from rank 0 over MPI.
void ensure_nccl(const Device& device) {
    cuda::nccl::ensure_comm(state().rank, state().world, device.index, [](void* bytes, size_t size) {
        MPI_Request req = MPI_REQUEST_NULL;
        DYAD_MPI_CALL(MPI_Ibcast(bytes, int(size), MPI_BYTE, 0, state().world_comm, &req));
        wait_request(req, describe("broadcast", "the NCCL communicator's id", nullptr));
    });
}
#endif

// Rank-aware last words for an uncaught exception: the default handler's message does not say which rank
// threw, and MPI_Abort ends the other ranks at once instead of leaving them to the timeout.
[[noreturn]] void terminate_job() {
    std::string why = "std::terminate was called";
    if (const std::exception_ptr e = std::current_exception()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            why = std::string("uncaught exception: ") + ex.what();
        } catch (...) {
            why = "uncaught exception of a type not derived from std::exception";
        }
    }
    std::fprintf(stderr, "dyad::dist: rank %d of %d stops the job: %s\n", state().rank, state().world, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    std::abort();
}
#endif

}  // namespace

bool mpi_built() { return DYAD_WITH_MPI != 0; }
bool launched() { return launcher_variable_set(); }
bool nccl_built() { return DYAD_WITH_NCCL != 0; }

void abort(int code, const std::string& why) {
    std::fprintf(stderr, "dyad::dist: rank %d of %d: %s\n", rank(), world_size(), why.c_str());
    std::fflush(stderr);
#if DYAD_WITH_MPI
    if (initialized()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
}

void set_timeout(double seconds) {
    DYAD_CHECK(seconds > 0, "dist::set_timeout: the timeout must be positive, got ", seconds, " s");
    state().timeout_s = seconds;
}
double timeout() { return state().timeout_s; }

void init() {
    State& s = state();
    if (s.initialized) return;
    DYAD_CHECK(!s.finalized, "dist::init: dist::finalize() has already run; MPI cannot be initialised twice");
    if (const char* v = std::getenv("DYAD_DIST_TIMEOUT"); v && *v) {
        char* end = nullptr;
        const double t = std::strtod(v, &end);
        DYAD_CHECK(end && *end == '\0' && t > 0, "dist::init: DYAD_DIST_TIMEOUT='", v,
                   "' is not a positive number of seconds");
        s.timeout_s = t;
    }
#if DYAD_WITH_MPI
    int already = 0;
    DYAD_MPI_CALL(MPI_Initialized(&already));
    if (!already) {
        int provided = 0;
        DYAD_MPI_CALL(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
        s.owns_mpi = true;
    }
    DYAD_MPI_CALL(MPI_Comm_dup(MPI_COMM_WORLD, &s.world_comm));
    DYAD_MPI_CALL(MPI_Comm_set_errhandler(s.world_comm, MPI_ERRORS_RETURN));
    DYAD_MPI_CALL(MPI_Comm_rank(s.world_comm, &s.rank));
    DYAD_MPI_CALL(MPI_Comm_size(s.world_comm, &s.world));
    MPI_Comm local = MPI_COMM_NULL;
    DYAD_MPI_CALL(MPI_Comm_split_type(s.world_comm, MPI_COMM_TYPE_SHARED, s.rank, MPI_INFO_NULL, &local));
    DYAD_MPI_CALL(MPI_Comm_rank(local, &s.local_rank));
    DYAD_MPI_CALL(MPI_Comm_size(local, &s.local_size));
    DYAD_MPI_CALL(MPI_Comm_free(&local));
    // Launched as N ranks but alone in MPI_COMM_WORLD: the launcher belongs to another MPI than the library.
    const int launched = launched_ranks();
    DYAD_CHECK(launched == 1 || s.world == launched, "dist::init: the launcher started ", launched,
               " ranks but MPI sees ", s.world, ": mpirun and the MPI library dyad was built with do not match");
    if (s.world > 1) std::set_terminate(terminate_job);
#else
    const int n = launched_ranks();
    DYAD_CHECK(n == 1, "dist::init: the launcher started ", n,
               " ranks, but this dyad was built without MPI (DYAD_WITH_MPI): each would train alone. Install "
               "libopenmpi-dev (bash scripts/setup.sh) and rebuild");
#endif
    s.initialized = true;
}

bool initialized() { return state().initialized && !state().finalized; }

void finalize() {
    State& s = state();
    if (!s.initialized || s.finalized) return;
#if DYAD_WITH_MPI
#if DYAD_WITH_NCCL
    cuda::nccl::destroy();
#endif
    DYAD_MPI_CALL(MPI_Comm_free(&s.world_comm));
    if (s.owns_mpi) DYAD_MPI_CALL(MPI_Finalize());
#endif
    s.finalized = true;
}

int rank() { return initialized() ? state().rank : 0; }
int world_size() { return initialized() ? state().world : 1; }
int local_rank() { return initialized() ? state().local_rank : 0; }
int local_size() { return initialized() ? state().local_size : 1; }

const char* reduce_op_name(ReduceOp op) {
    switch (op) {
        case ReduceOp::sum:
            return "sum";
        case ReduceOp::mean:
            return "mean";
        case ReduceOp::max:
            return "max";
        case ReduceOp::min:
            return "min";
    }
    return "?";
}

void all_reduce(Tensor& t, ReduceOp op) {
    require_init("all_reduce");
    check_tensor("all_reduce", t);
    DYAD_CHECK(op != ReduceOp::mean || is_floating(t.dtype()), "dist::all_reduce: mean of ", dtype_name(t.dtype()),
               " values (a floating dtype is needed)");
#if DYAD_WITH_MPI
    start_collective();
    check_same_everywhere("all_reduce", reduce_op_name(op), t, int64_t(op));
#if DYAD_WITH_NCCL
    if (t.device().is_cuda()) {  // NCCL, ordered on the GPU (no host wait)
        ensure_nccl(t.device());
        const auto nop = op == ReduceOp::max   ? cuda::nccl::Op::max
                         : op == ReduceOp::min ? cuda::nccl::Op::min
                                               : cuda::nccl::Op::sum;
        cuda::nccl::all_reduce(t.raw_data(), t.numel(), t.dtype(), nop);
        if (op == ReduceOp::mean && world_size() > 1) {
            NoGradGuard ng;
            t.mul_(1.0 / double(world_size()));
        }
        return;
    }
#endif
    if (t.numel() > 0) {
        MPI_Request req = MPI_REQUEST_NULL;
        DYAD_MPI_CALL(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), mpi_count("all_reduce", t.numel()),
                                     mpi_type(t.dtype()), mpi_op(op), state().world_comm, &req));
        wait_request(req, describe("all_reduce", reduce_op_name(op), &t));
    }
#endif
    if (op == ReduceOp::mean && world_size() > 1) {
        const double scale = 1.0 / double(world_size());
        if (t.dtype() == DType::float32)
            for (float *p = t.data<float>(), *e = p + t.numel(); p != e; p++) *p = float(double(*p) * scale);
        else
            for (double *p = t.data<double>(), *e = p + t.numel(); p != e; p++) *p *= scale;
    }
}

void broadcast(Tensor& t, int root) {
    require_init("broadcast");
    check_tensor("broadcast", t);
    DYAD_CHECK(root >= 0 && root < world_size(), "dist::broadcast: root ", root, " is not a rank (world size ",
               world_size(), ")");
#if DYAD_WITH_MPI
    start_collective();
    const std::string from = "from rank " + std::to_string(root);
    check_same_everywhere("broadcast", from.c_str(), t, root);
#if DYAD_WITH_NCCL
    if (t.device().is_cuda()) {
        ensure_nccl(t.device());
        cuda::nccl::broadcast(t.raw_data(), t.numel(), t.dtype(), root);
        return;
    }
#endif
    if (t.numel() > 0) {
        MPI_Request req = MPI_REQUEST_NULL;
        DYAD_MPI_CALL(MPI_Ibcast(t.raw_data(), mpi_count("broadcast", t.numel()), mpi_type(t.dtype()), root,
                                 state().world_comm, &req));
        wait_request(req, describe("broadcast", from.c_str(), &t));
    }
#endif
}

double all_reduce(double v, ReduceOp op) {
    require_init("all_reduce");
#if DYAD_WITH_MPI
    start_collective();
    MPI_Request req = MPI_REQUEST_NULL;
    DYAD_MPI_CALL(MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, mpi_op(op), state().world_comm, &req));
    wait_request(req, describe("all_reduce", (std::string(reduce_op_name(op)) + ", a scalar").c_str(), nullptr));
#endif
    return op == ReduceOp::mean ? v / double(world_size()) : v;
}

void barrier() {
    require_init("barrier");
#if DYAD_WITH_MPI
    start_collective();
    MPI_Request req = MPI_REQUEST_NULL;
    DYAD_MPI_CALL(MPI_Ibarrier(state().world_comm, &req));
    wait_request(req, describe("barrier", "", nullptr));
#endif
}

// ---------------------------------------------------------------------------- non-blocking sums (comm.h)
namespace detail {

int start_sum(void* data, int64_t count, DType dtype, Device device, const std::string& what) {
    require_init("DataParallel");
    DYAD_CHECK(dtype == DType::float32 || dtype == DType::float64, "dist: a gradient bucket of ", dtype_name(dtype),
               " (float32 or float64 only)");
    DYAD_CHECK(device.is_cpu() || DYAD_WITH_NCCL, "dist: a gradient bucket on ", device.str(),
               " needs NCCL, which this build does not have");
#if DYAD_WITH_MPI
    State& s = state();
    if (s.world == 1 || count == 0) return -1;
#if DYAD_WITH_NCCL
    if (device.is_cuda()) {
        start_collective();
        ensure_nccl(device);
        return kGpuRequest + cuda::nccl::start_sum(data, count, dtype);
    }
#endif
    size_t id = 0;
    while (id < s.requests.size() && s.requests[id] != MPI_REQUEST_NULL) id++;
    if (id == s.requests.size()) {
        s.requests.push_back(MPI_REQUEST_NULL);
        s.request_what.emplace_back();
    }
    start_collective();
    DYAD_MPI_CALL(MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count("all_reduce", count), mpi_type(dtype), MPI_SUM,
                                 s.world_comm, &s.requests[id]));
    s.request_what[id] = describe("all_reduce", "sum", nullptr) + " of " + what;
    return int(id);
#else
    (void)data, (void)count, (void)device, (void)what;
    return -1;
#endif
}

bool test(int request) {
#if DYAD_WITH_MPI
    if (request < 0 || request >= kGpuRequest) return true;  // NCCL progresses on its own stream
    State& s = state();
    DYAD_CHECK(size_t(request) < s.requests.size(), "dist: request ", request, " does not exist");
    if (s.requests[size_t(request)] == MPI_REQUEST_NULL) return true;
    int done = 0;
    DYAD_MPI_CALL(MPI_Test(&s.requests[size_t(request)], &done, MPI_STATUS_IGNORE));
    return done != 0;
#else
    (void)request;
    return true;
#endif
}

void wait(int request) {
#if DYAD_WITH_MPI
    if (request < 0) return;
#if DYAD_WITH_NCCL
    if (request >= kGpuRequest) {  // the GPU's stream waits, not the host
        cuda::nccl::join(request - kGpuRequest);
        return;
    }
#endif
    State& s = state();
    DYAD_CHECK(size_t(request) < s.requests.size(), "dist: request ", request, " does not exist");
    if (s.requests[size_t(request)] == MPI_REQUEST_NULL) return;
    wait_request(s.requests[size_t(request)], s.request_what[size_t(request)]);
#else
    (void)request;
#endif
}

}  // namespace detail

}  // namespace dyad::dist
