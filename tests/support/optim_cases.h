// Shared case lists of the optimizer and regularisation tests: the same SGD option sets, sizes and dropout
// probabilities drive the omp-vs-naive tests and the CUDA-vs-naive tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dyad/optim.h"
#include "kernels/optim.h"

namespace dyad::test {

// Every valid combination of momentum, dampening, Nesterov and weight decay (lr 0.1).
inline std::vector<optim::SgdOptions> sgd_option_sets() {
    std::vector<optim::SgdOptions> out;
    for (double momentum : {0.0, 0.9})
        for (double dampening : {0.0, 0.3})
            for (bool nesterov : {false, true})
                for (double wd : {0.0, 0.05}) {
                    if (nesterov && (momentum == 0 || dampening != 0)) continue;
                    optim::SgdOptions o;
                    o.lr = 0.1;
                    o.momentum = momentum;
                    o.dampening = dampening;
                    o.nesterov = nesterov;
                    o.weight_decay = wd;
                    out.push_back(o);
                }
    return out;
}

inline std::string describe(const optim::SgdOptions& o) {
    return "momentum " + std::to_string(o.momentum) + " dampening " + std::to_string(o.dampening) + " nesterov " +
           std::to_string(o.nesterov) + " weight_decay " + std::to_string(o.weight_decay);
}

// The kernel parameters of the sgd_step tests for options o (lr 0.037, first step or not).
inline SgdParams sgd_kernel_params(const optim::SgdOptions& o, bool first_step) {
    SgdParams sp;
    sp.lr = 0.037;
    sp.momentum = o.momentum;
    sp.dampening = o.dampening;
    sp.weight_decay = o.weight_decay;
    sp.nesterov = o.nesterov;
    sp.first_step = first_step;
    return sp;
}

// Sizes of the sgd_step kernel tests: odd, and one past the omp parallel threshold.
inline const std::vector<int64_t>& sgd_sizes() {
    static const std::vector<int64_t> s = {1, 7, 33, 100003};
    return s;
}

// Sizes around the omp thresholds and SIMD widths, and probabilities whose float rounding is below and
// above p.
inline const std::vector<int64_t>& dropout_sizes() {
    static const std::vector<int64_t> s = {1, 7, 33, 16385, 100003};
    return s;
}
inline const std::vector<double>& dropout_probs() {
    static const std::vector<double> s = {0.1, 0.3, 0.5, 0.9, 1.0 / 3.0};
    return s;
}

}  // namespace dyad::test
