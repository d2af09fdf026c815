// dyad::dist over MPI (DYAD_WITH_MPI=1), or one process alone. Every MPI call's status is checked: the
// communicator returns errors (MPI_ERRORS_RETURN) instead of aborting, and a failure becomes a dyad::Error
// naming the call, MPI's message, and the file and line.
#include "dyad/dist.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dyad/error.h"

#ifndef DYAD_WITH_MPI
#define DYAD_WITH_MPI 0  // set to 1 for this file by lib/CMakeLists.txt when the build has MPI
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
#if DYAD_WITH_MPI
    MPI_Comm world_comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: dyad's traffic apart from the program's
#endif
};

State& state() {
    static State s;
    return s;
}

// The number of ranks the launcher started, from the variables mpirun (Open MPI, MPICH's Hydra, MVAPICH)
// and srun set; 1 when none is set.
int launched_ranks() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"}) {
        const char* v = std::getenv(name);
        if (v && *v) {
            const int n = std::atoi(v);
            if (n > 1) return n;
        }
    }
    return 1;
}

void require_init(const char* what) {
    DYAD_CHECK(state().initialized && !state().finalized, "dist::", what, ": call dist::init() first",
               state().finalized ? " (dist::finalize() has already run)" : "");
}

// t: defined, contiguous, on the CPU, of a dtype MPI reduces.
void check_tensor(const char* what, const Tensor& t) {
    DYAD_CHECK(t.defined(), "dist::", what, ": the tensor is undefined");
    DYAD_CHECK(t.device().is_cpu(), "dist::", what, ": the tensor is on ", t.device().str(),
               "; this version reduces CPU tensors only (GPU ranks over NCCL are not built yet)");
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

// Every rank's (numel, dtype, root or op) must agree: max and min of each over the ranks, in one small
// all-reduce, are equal exactly when they do. A mismatch throws on every rank, naming this rank's values and
// the range over the ranks.
void check_same_everywhere(const char* what, const Tensor& t, int64_t extra) {
    const int64_t mine[3] = {t.numel(), int64_t(t.dtype()), extra};
    int64_t both[6] = {mine[0], mine[1], mine[2], -mine[0], -mine[1], -mine[2]};
    DYAD_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, both, 6, MPI_INT64_T, MPI_MAX, state().world_comm));
    for (int i = 0; i < 3; i++)
        if (both[i] != -both[i + 3]) {
            const char* field = i == 0 ? "element counts" : i == 1 ? "dtypes" : "roots or reductions";
            throw Error("dist::" + std::string(what) + ": the ranks' " + field + " differ (rank " +
                        std::to_string(state().rank) + ": shape " + shape_str(t.shape()) + ", " +
                        dtype_name(t.dtype()) + "; over the ranks the value ranges " + std::to_string(-both[i + 3]) +
                        " to " + std::to_string(both[i]) + ")");
        }
}
#endif

}  // namespace

bool mpi_built() { return DYAD_WITH_MPI != 0; }

void init() {
    State& s = state();
    if (s.initialized) return;
    DYAD_CHECK(!s.finalized, "dist::init: dist::finalize() has already run; MPI cannot be initialised twice");
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
    check_same_everywhere("all_reduce", t, int64_t(op));
    if (t.numel() > 0)
        DYAD_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), int(t.numel()), mpi_type(t.dtype()), mpi_op(op),
                                    state().world_comm));
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
    check_same_everywhere("broadcast", t, root);
    if (t.numel() > 0)
        DYAD_MPI_CALL(MPI_Bcast(t.raw_data(), int(t.numel()), mpi_type(t.dtype()), root, state().world_comm));
#endif
}

double all_reduce(double v, ReduceOp op) {
    require_init("all_reduce");
#if DYAD_WITH_MPI
    DYAD_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, mpi_op(op), state().world_comm));
#endif
    return op == ReduceOp::mean ? v / double(world_size()) : v;
}

void barrier() {
    require_init("barrier");
#if DYAD_WITH_MPI
    DYAD_MPI_CALL(MPI_Barrier(state().world_comm));
#endif
}

}  // namespace dyad::dist
