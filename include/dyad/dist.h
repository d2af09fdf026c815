// Data-parallel training across processes: the ranks of an MPI job (`mpirun -np N program ...`), each a
// process with its own share of the data, reducing tensors over MPI. docs/distributed.md says how to run
// it on one machine, on several, and under Slurm.
//
// Without MPI in the build (mpi_built() is false) the API runs one process alone: rank 0 of 1, and every
// collective leaves its tensor as it is (the reduction over one rank); init() refuses a launch of several
// ranks, which would otherwise train N unconnected copies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dyad/export.h"
#include "dyad/nn.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::dist {

// Whether this build has MPI (DYAD_WITH_MPI at configure time), and NCCL for GPU ranks (with the CUDA
// backend and MPI; configure's "dyad: NCCL" line says why not).
bool mpi_built();
bool nccl_built();
// Whether a launcher started this process as a rank of a job (mpirun, mpiexec or srun set their variables:
// OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE or MV2_COMM_WORLD_SIZE), even a job of one rank. A program that
// runs both alone and under mpirun calls init() when this is true.
bool launched();

// Joins the job: initialises MPI (thread level "funneled": dyad's collectives come from the thread that
// called init()) unless the program already did, and reads this process's rank and the world size from
// MPI_COMM_WORLD, and its local rank and the local size from the ranks that share this machine. Calling it
// again does nothing. Throws dyad::Error when several ranks were launched and the build has no MPI.
void init();
bool initialized();
// Leaves the job: every rank calls it, after its last collective (MPI_Finalize, when init() initialised
// MPI). init() may not be called again afterwards (MPI's rule).
void finalize();

int rank();        // this process's rank in [0, world_size()); 0 before init()
int world_size();  // 1 before init()
int local_rank();  // the rank among the processes on this machine (picks the GPU of a GPU rank)
int local_size();

enum class ReduceOp { sum, mean, max, min };
const char* reduce_op_name(ReduceOp op);

// In place on every rank: t becomes the reduction over the ranks of their t (mean: the sum divided by the
// world size, floating types only). t is a contiguous tensor of float32, float64, int32 or int64 with the
// same shape, dtype and kind of device on every rank: a mismatch is a dyad::Error on every rank (naming
// both), not a hang. CPU tensors go over MPI and the call returns with the result; GPU tensors (where the
// build has NCCL: one rank per GPU, the device local_rank() picks) go over NCCL, ordered on the GPU after
// the work queued before the call and before the work queued after it, without the host waiting (so a
// captured step may hold them). The write is outside autograd (as an optimizer's update is). Every rank
// must call the collectives in the same order.
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum);
// In place: every rank's t becomes root's (same conditions on t).
void broadcast(Tensor& t, int root = 0);
// A scalar reduced over the ranks (metrics: a loss, a count of correct predictions).
double all_reduce(double v, ReduceOp op = ReduceOp::sum);
// Returns when every rank has called it.
void barrier();

// How long a collective waits for the other ranks before it ends the job: a rank that died, stopped calling
// collectives or called a different one would otherwise hang every other rank forever. When a collective
// has waited this long, its rank prints which collective it is (its number on this rank, the operation,
// dtype and shape) and MPI_Abort ends every rank. Default 300 s; the environment variable
// DYAD_DIST_TIMEOUT (seconds) sets it at init(). A rank that ends with an uncaught exception also ends
// the job at once, printing its rank and the exception's message.
void set_timeout(double seconds);
double timeout();
// Ends every rank of the job now (MPI_Abort with `code`) after printing "dyad::dist: rank R of N: why" to
// standard error: for an error one rank cannot recover from, which would otherwise leave the others
// waiting in their next collective until the timeout. Without MPI, or before init(), it prints and exits.
[[noreturn]] void abort(int code, const std::string& why);

// ---------------------------------------------------------------------------- synchronised batch norm
// Batch normalisation in training with the statistics of the global batch: every rank's x (N_r, C, H, W)
// is normalised with the mean and biased variance over all ranks' (N, H, W), from one all-reduce of the
// per-channel sums, sums of squares (in float64) and counts; backward all-reduces sum(dy) and
// sum(dy * xhat) the same way, so x's gradient is that of the ranks' summed losses. The weight's and
// bias's gradients are this rank's own sums (DataParallel averages them). running_mean/running_var, when
// defined, are updated as batch_norm2d does, with the global statistics (unbiased variance over the
// global count). weight and bias may both be undefined. Every rank calls it in the same order (it is a
// collective); with one rank it equals batch_norm2d in training. nn::BatchNorm2d uses it when set_sync
// is on.
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                         const Tensor& bias, double momentum = 0.1, double eps = 1e-5);
// Sets every BatchNorm2d below `module` (itself included) to synchronised statistics (on = false: back to
// per-rank statistics), like PyTorch's convert_sync_batchnorm.
void convert_sync_batchnorm(nn::Module& module, bool on = true);

// ---------------------------------------------------------------------------- DataParallel
struct DataParallelOptions {
    // Gradients travel in flat buckets of at most this many bytes (a parameter larger than the cap gets a
    // bucket of its own), in reverse parameter order, the order backward finishes them in. The first bucket
    // is smaller, so that communication starts early in backward. PyTorch DDP's defaults.
    size_t bucket_cap_bytes = size_t(25) << 20;
    size_t first_bucket_cap_bytes = size_t(1) << 20;
    // true: each bucket's all-reduce starts as soon as backward has finished its last gradient, while the
    // rest of backward runs. false: every bucket starts after backward (the same sums, the same bits).
    bool overlap = true;
    // Before each forward in training mode, every rank takes rank 0's buffers (batch-norm running
    // statistics), as DDP's broadcast_buffers does: the ranks' models stay identical.
    bool broadcast_buffers = true;
};

// Data-parallel training of a module on every rank of the job (PyTorch's DistributedDataParallel). Each
// rank runs the same model on its own share of every batch; after backward, every parameter's grad() is
// the mean over the ranks of their gradients, so the optimizer (any, unchanged) takes the same step on
// every rank and the ranks' parameters stay identical.
//
//   dist::init();
//   auto model = models::baseline_cnn(10, 1, 32);
//   dist::DataParallel dp(*model);              // every rank now holds rank 0's parameters and buffers
//   optim::SGD opt(model->parameters(), ...);
//   for (auto& [x, y] : loader) {               // LoaderOptions rank/world_size: this rank's share
//       opt.zero_grad();
//       Tensor loss = cross_entropy(dp(x), y);  // dp(x): the module's forward (after the buffers' broadcast)
//       loss.backward();                        // gradients are all-reduced while backward runs
//       opt.step();
//   }
//
// What it does:
// - At construction, rank 0's parameters and buffers are broadcast to every rank (the ranks must build the
//   same module: the same parameters with the same shapes, in the same order; a mismatch is an error on
//   every rank).
// - Gradients are packed into flat buckets (DataParallelOptions) and each bucket is summed over the ranks
//   with a non-blocking MPI all-reduce, started from the gradient hooks as soon as backward has finished the
//   bucket's last gradient, always in bucket order on every rank. At the end of backward the remaining
//   buckets start, every bucket completes, and each gradient becomes its sum times 1 / world_size. Two
//   ranks therefore give exactly (g0 + g1) * 0.5 in float32, the bits one process gets by adding the two
//   shards' gradients.
// - A parameter that got no gradient on a rank (a branch that rank did not take) contributes zeros there;
//   one that got none on any rank keeps an undefined grad(), as it would in one process.
// - no_sync(): while the guard lives, backward accumulates gradients locally with no communication; the
//   first backward after it reduces the accumulated gradients (gradient accumulation over micro-batches).
// - With one rank (or no MPI) nothing is communicated: dp(x) is the module's forward and gradients are
//   the module's own.
// The module, its parameters and the DataParallel live on the thread that called dist::init(); the module
// must outlive the DataParallel. Parameters are float32 or float64, all on one device: the CPU (MPI) or,
// where the build has NCCL, this rank's GPU. On a GPU every step stays on the device: the buckets are
// reduced on NCCL's stream while backward runs on dyad's, the end of backward only orders the streams, and
// every parameter gets a gradient (zeros where no rank produced one: reading the "used" counts would make
// the host wait), so a CapturedStep can capture the whole step, the collectives included.
class DataParallel {
public:
    explicit DataParallel(nn::Module& module, DataParallelOptions options = {});
    ~DataParallel();  // removes the gradient hooks; the module goes on as a plain module
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;

    // The module's forward on this rank's inputs (after the buffers' broadcast, when enabled and training).
    Tensor operator()(const Tensor& x);
    Tensor operator()(const std::vector<Tensor>& inputs);
    nn::Module& module() { return module_; }
    // Every rank takes rank 0's buffers now (before evaluating or saving: in training each rank's batch-norm
    // running statistics follow its own batches until the next forward's broadcast).
    void sync_buffers();

    // Gradient accumulation without communication while the guard lives (DDP's no_sync).
    class NoSync {
    public:
        explicit NoSync(DataParallel& dp) : dp_(dp), prev_(dp.sync_) { dp.sync_ = false; }
        ~NoSync() { dp_.sync_ = prev_; }
        NoSync(const NoSync&) = delete;
        NoSync& operator=(const NoSync&) = delete;

    private:
        DataParallel& dp_;
        bool prev_;
    };
    NoSync no_sync() { return NoSync(*this); }

    // The buckets: the parameters' indices in module.parameters() order, bucket by bucket in the order they
    // are reduced, and each bucket's size in bytes.
    const std::vector<std::vector<size_t>>& bucket_params() const;
    std::vector<size_t> bucket_bytes() const;
    // Seconds the last backward spent at its end waiting for reductions to complete (the communication
    // that backward did not hide); how many buckets had started, and how many had completed, while backward
    // was still running (0 without overlap, or with one rank).
    double last_wait_seconds() const;
    // When each bucket's last gradient arrived in the last backward (steady_clock, seconds since its epoch):
    // with the bucket sizes, what a bandwidth model needs to predict the overlap elsewhere.
    const std::vector<double>& last_bucket_ready_times() const;
    size_t last_buckets_started_early() const;
    size_t last_buckets_done_early() const;

private:
    struct Impl;
    nn::Module& module_;
    bool sync_ = true;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dyad::dist

DYAD_PUBLIC_END
