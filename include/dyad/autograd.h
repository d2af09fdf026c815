// Autograd: a define-by-run tape. Every differentiable op records a node with its backward closure when
// grad mode is on and an input requires grad; Tensor::backward() walks the nodes in reverse topological
// order. Gradients accumulate (+=) into leaves; a tensor used twice (or a diamond) receives the sum.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "dyad/export.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

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

// Inference: what NoGradGuard does, under libtorch's name for it. Nothing is recorded, and ops skip the work
// that only backward needs whenever nothing is recorded (max_pool2d and relu_max_pool2d do not make the
// positions of their maxima: a forward writes a third less), under either guard.
class InferenceModeGuard : public NoGradGuard {};

// Sets grad() of every tensor in `params` to undefined (the next backward starts from zero).
void zero_grad(const std::vector<Tensor>& params);

// ---------------------------------------------------------------------------- custom ops
// A differentiable op written by the user, like torch.autograd.Function: forward computes the output from
// the inputs with dyad's ops (it runs with grad mode off: nothing inside is recorded); backward gets the
// gradient of the output (contiguous, the output's shape), the inputs and the output, and returns one
// gradient per input, of that input's shape, dtype and device, or an undefined tensor where the input
// needs none (one that does not require grad). Gradients accumulate into the inputs' gradients as every
// op's do. backward runs with grad mode off (no double backward). The op keeps its inputs and output alive
// until backward has run; an input or the output updated in place before then makes backward throw, as
// for dyad's own ops. Example (tests/core/test_autograd.cpp has it with a gradient check):
//
//   autograd::CustomOp cube{"cube",
//       [](const std::vector<Tensor>& in) { return mul(mul(in[0], in[0]), in[0]); },
//       [](const Tensor& dy, const std::vector<Tensor>& in, const Tensor&) {
//           return std::vector<Tensor>{mul(dy, mul(mul(in[0], in[0]), 3.0))};
//       }};
//   Tensor y = autograd::apply(cube, {x});
namespace autograd {
struct CustomOp {
    std::string name;
    std::function<Tensor(const std::vector<Tensor>& inputs)> forward;
    std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<Tensor>& inputs,
                                      const Tensor& output)>
        backward;
};
// Runs op.forward on `inputs` and, when grad mode is on and an input requires grad, records op.backward.
// Errors (a missing function, an undefined output, a gradient of the wrong count, shape, dtype or device)
// name the op.
Tensor apply(const CustomOp& op, const std::vector<Tensor>& inputs);
}  // namespace autograd

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

DYAD_PUBLIC_END
