// Shared case lists of the optimizer and regularisation tests: the SGD option sets, Adam modes, sizes and
// dropout probabilities of the kernel cases in tests/ops/optim.cpp and tests/ops/regularize.cpp (run on
// every kernel set) and of the CPU tests beside them.
#pragma once
#include <cmath>
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

// Every mode of adam_step: Adam and AdamW, with and without weight decay and amsgrad, a lerp weight below
// and above 0.5 (beta1 0.9 and 0.3), at step 1 and step 7 (other bias corrections).
inline std::vector<AdamParams> adam_kernel_params() {
    std::vector<AdamParams> out;
    for (bool decoupled : {false, true})
        for (double wd : {0.0, 0.05})
            for (bool amsgrad : {false, true})
                for (double beta1 : {0.9, 0.3})
                    for (int step : {1, 7}) {
                        AdamParams p;
                        p.lr = 0.013;
                        p.beta1 = beta1;
                        p.beta2 = 0.995;
                        p.eps = 1e-6;
                        p.weight_decay = wd;
                        p.decoupled = decoupled;
                        p.amsgrad = amsgrad;
                        p.bias_correction1 = 1.0 - std::pow(beta1, step);
                        p.bias_correction2 = 1.0 - std::pow(0.995, step);
                        out.push_back(p);
                    }
    return out;
}

inline std::string describe(const AdamParams& p) {
    return std::string(p.decoupled ? "AdamW" : "Adam") + " weight_decay " + std::to_string(p.weight_decay) +
           " amsgrad " + std::to_string(p.amsgrad) + " beta1 " + std::to_string(p.beta1) + " bias_correction1 " +
           std::to_string(p.bias_correction1);
}

// Sizes of the sgd_step kernel tests: odd, and one past the omp parallel threshold.
inline const std::vector<int64_t>& sgd_sizes() {
    static const std::vector<int64_t> s = {1, 7, 33, 100003};
    return s;
}

// The tensors of one multi-tensor SGD step (150, where the GPU kernel takes up to 48 per launch): empty
// ones, sizes around the 2048-element chunk of a GPU block and the float4 width, and larger ones.
inline std::vector<int64_t> sgd_multi_sizes() {
    std::vector<int64_t> sizes;
    const int64_t special[] = {0, 1, 3, 4, 5, 2047, 2048, 2049, 4096, 6145, 100003};
    for (int i = 0; i < 150; i++) sizes.push_back(i % 4 == 0 ? special[(i / 4) % 11] : (int64_t(i) * 7919) % 3001 + 1);
    return sizes;
}

// The gradients of the clip_grad_norm_ tests: 130 (more than one GPU launch's worth) of odd sizes, one of
// them over the omp threshold.
inline std::vector<int64_t> clip_sizes() {
    std::vector<int64_t> sizes;
    for (int i = 0; i < 130; i++) sizes.push_back(i == 7 ? 100003 : 1 + (i * 37) % 301);
    return sizes;
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

// Sizes of the finiteness kernels: the dropout sizes and 5000011, more than the first pass of the GPU's
// count_nonfinite covers in one sweep of its 1024 blocks.
inline const std::vector<int64_t>& nonfinite_sizes() {
    static const std::vector<int64_t> s = {1, 7, 33, 16385, 100003, 5000011};
    return s;
}

}  // namespace dyad::test
