// Ranks that fail the others: ctest runs this under `mpirun -np 2` with a short DYAD_DIST_TIMEOUT and
// checks that the job ends (no hang) with a message naming the rank and the collective. The mode, argv[1]:
//   skip    rank 1 skips one all_reduce and goes on to finalize: rank 0 times out inside the all_reduce
//   throw   rank 1 throws an exception nobody catches in the middle of the steps
//   exit    rank 1 returns from main without finalize (an early exit) while rank 0 waits
//   hang    rank 1 never reaches the collective (sleeps forever): rank 0 times out
// Each mode prints "reached the end" on a rank that survives, which must never happen on rank 0.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "dyad/dist.h"
#include "dyad/dyad.h"

using namespace dyad;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: dyad_dist_fault skip|throw|exit|hang\n");
        return 2;
    }
    const char* mode = argv[1];
    dist::init();
    const int r = dist::rank();
    Tensor t = Tensor::ones({1000});
    for (int step = 0; step < 5; step++) {
        if (r == 1 && step == 2) {
            if (std::strcmp(mode, "skip") == 0) break;
            if (std::strcmp(mode, "throw") == 0) throw Error("a failure on rank 1 at step 2");
            if (std::strcmp(mode, "exit") == 0) return 0;
            if (std::strcmp(mode, "hang") == 0)
                for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        dist::all_reduce(t);
    }
    std::printf("rank %d reached the end\n", r);
    dist::finalize();
    return 0;
}
