// Autograd: a define-by-run tape. Every differentiable op records a node with its backward closure when
// grad mode is on and an input requires grad; Tensor::backward() walks the nodes in reverse topological
// order. Gradients accumulate (+=) into leaves; a tensor used twice (or a diamond) receives the sum.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "dyad/tensor.h"

namespace dyad {

// Grad mode is per thread and on by default.
bool is_grad_enabled();
void set_grad_enabled(bool on);

// Turns grad mode off for a scope: ops record nothing (inference, optimizer updates).
class NoGradGuard {
public:
    NoGradGuard() : prev_(is_grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(prev_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

// Sets grad() of every tensor in `params` to undefined (the next backward starts from zero).
void zero_grad(const std::vector<Tensor>& params);

// ---------------------------------------------------------------------------- gradcheck
// Compares the gradients that backward() computes for fn against central finite differences.
// Inputs must be float64 CPU tensors (they run on the naive kernels). The scalar checked is
// f = sum(w * fn(inputs)) with a fixed random w, so every output element contributes.
// An input that has requires_grad() false is held constant and not checked.
// Passes when, for every element of every input:
//   - finite differences: |analytic - numeric| <= atol + rtol * |numeric|;
//   - repeated backward: a second forward and backward on the same input values gives the same gradient
//     bits (backward is deterministic and leaves no state behind);
//   - zero grad_output: backward of fn(inputs) with an all-zero incoming gradient gives all-zero input
//     gradients (backward is linear in the incoming gradient).
// A failure's report names the op that made fn's output and which of these checks failed.
struct GradcheckOptions {
    double eps = 1e-6;   // finite-difference step
    double atol = 1e-8;  // see docs/testing.md for why these defaults
    double rtol = 1e-6;
    uint64_t seed = 1234;  // for w
};
struct GradcheckResult {
    bool ok = true;
    std::string report;  // the op, then per failed check and input: where, and the values
};
using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;
GradcheckResult gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace dyad
