// autograd::apply: user-written differentiable ops. The forward runs with grad mode off; a node records
// the user's backward, whose returned gradients are checked and added into the engine's gradient buffers.
#include <memory>
#include <string>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"

namespace dyad::autograd {

Tensor apply(const CustomOp& op, const std::vector<Tensor>& inputs) {
    const std::string& name = op.name.empty() ? std::string("custom op") : op.name;
    DYAD_CHECK(bool(op.forward), name, ": the custom op has no forward function");
    for (size_t i = 0; i < inputs.size(); i++) DYAD_CHECK(inputs[i].defined(), name, ": input ", i, " is undefined");
    bool record_it = is_grad_enabled();
    if (record_it) {
        record_it = false;
        for (const Tensor& t : inputs) record_it = record_it || t.requires_grad();
    }
    DYAD_CHECK(!record_it || bool(op.backward), name,
               ": the custom op has no backward function, and an input requires grad");
    Tensor output;
    {
        NoGradGuard ng;
        output = op.forward(inputs);
    }
    DYAD_CHECK(output.defined(), name, ": forward returned an undefined tensor");
    if (!record_it) return output;
    // The node's name must outlive it: the closure owns the string the node points to.
    auto label = std::make_shared<const std::string>(name);
    std::vector<Tensor> saved_inputs;
    for (const Tensor& t : inputs) saved_inputs.push_back(t.detach());
    const Tensor saved_output = output.detach();  // detached: the closure must not own the output (a cycle)
    auto backward = op.backward;
    std::vector<Tensor> saved = saved_inputs;
    saved.push_back(saved_output);
    record(
        label->c_str(), inputs, output,
        [label, backward, saved_inputs, saved_output](const Tensor& dy, GradSink& sink) {
            NoGradGuard ng;
            const std::vector<Tensor> grads = backward(dy, saved_inputs, saved_output);
            DYAD_CHECK(grads.size() == saved_inputs.size(), *label, ": backward returned ", grads.size(),
                       " gradients for ", saved_inputs.size(), " inputs");
            for (size_t i = 0; i < grads.size(); i++) {
                if (!sink.needs(i)) continue;
                const Tensor& g = grads[i];
                DYAD_CHECK(g.defined(), *label, ": backward returned no gradient for input ", i,
                           ", which requires grad");
                const Tensor& want = sink.grad(i);
                DYAD_CHECK(g.shape() == want.shape() && g.dtype() == want.dtype() && g.device() == want.device(),
                           *label, ": the gradient of input ", i, " is ", g.str(), " but the input is ", want.str());
                Tensor acc = want;
                acc.add_(g);
            }
        },
        saved);
    return output;
}

}  // namespace dyad::autograd
