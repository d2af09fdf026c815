// The MPI job for the dist tests: dist::init() once for the program (every case needs it), finalize() at
// exit, after Catch's last case.
#pragma once
#include "dyad/dist.h"

namespace dyad::test {

struct Job {
    Job() { dist::init(); }
    ~Job() { dist::finalize(); }
};
inline const Job& job() {
    static const Job j;
    return j;
}

}  // namespace dyad::test
