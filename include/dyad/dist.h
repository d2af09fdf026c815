// Data-parallel training across processes: the ranks of an MPI job (`mpirun -np N program ...`), each a
// process with its own share of the data, reducing tensors over MPI. docs/distributed.md says how to run
// it on one machine, on several, and under Slurm.
//
// Without MPI in the build (mpi_built() is false) the API runs one process alone: rank 0 of 1, and every
// collective leaves its tensor as it is (the reduction over one rank); init() refuses a launch of several
// ranks, which would otherwise train N unconnected copies.
#pragma once
#include "dyad/export.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::dist {

// Whether this build has MPI (DYAD_WITH_MPI at configure time).
bool mpi_built();

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
// world size, floating types only). t is a contiguous CPU tensor of float32, float64, int32 or int64 with
// the same shape and dtype on every rank: a mismatch is a dyad::Error on every rank (naming both), not a
// hang. The write is outside autograd (as an optimizer's update is). Every rank must call the collectives
// in the same order.
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

}  // namespace dyad::dist

DYAD_PUBLIC_END
