// Captured training steps: a step (forward, backward, optimizer) recorded once into a CUDA graph and
// replayed with one launch per call, falling back to running the step eagerly wherever a graph cannot
// reproduce it. On the CPU, and in a build without CUDA, a CapturedStep just calls the step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dyad/export.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad {

struct CaptureOptions {
    int warmup = 2;         // eager calls per key before the capture (at least 1)
    bool enabled = true;    // false: every call runs the step eagerly
    size_t max_graphs = 4;  // graphs kept (least recently used dropped); at least 1
};

// A training step run many times with the same shapes. On the CPU, or with enabled == false, calling it
// just runs `step(inputs)`. With CUDA inputs: the first `warmup` calls for a given key run eagerly (cuDNN's
// algorithm search, workspaces, optimizer buffers and the pool's first allocations happen there); the next
// call captures the step into a CUDA graph with static copies of the inputs, launches it, and later calls
// with the same key copy the inputs into the static buffers (device to device) and replay the graph: one
// launch, no per-op host work. The key is the inputs' shapes, dtypes and devices plus `version`: a caller
// that changed anything the host bakes into the launches (the learning rate, a module's train/eval mode)
// passes a new version, which captures afresh. At most max_graphs are kept (least recently used dropped).
// If capture fails (an op that waits for the GPU, copies from the host, or draws random numbers inside the
// step, or a CUDA error during capture), the capture is discarded, the step is run eagerly for that call,
// that key runs eagerly from then on, and fallback_reason() says why.
//
// What a replay does is what the GPU did during the capture, with the same addresses: the step must
// - read everything that changes from call to call from its inputs (or from tensors it updates in place:
//   parameters, optimizer buffers, batch-norm statistics), never from host values, and keep every tensor
//   it uses alive and in place while the CapturedStep exists (replacing a parameter or a buffer with a new
//   tensor, or destroying the model, needs reset() first);
// - start from zero_grad() (a failed capture leaves gradients that never had memory; zero_grad drops them);
// - not read results on the host (item(), to(cpu)): return the loss and read it after the call.
// The host code of the step runs only in eager and capture calls. An optimizer's step count therefore
// misses the replays; CapturedStep does not know the optimizer, so the caller adds them:
//     Tensor loss = step({x, y})[0];
//     if (step.last_replayed()) opt.add_replayed_steps(1);
// Gradients held by the parameters after a replay are those of the latest launch of the graph that
// produced them (a replay of one key's graph does not update the gradients another key's graph left).
// Memory: the graph's own allocations are reported in cuda::memory_stats().graph_reserved.
// A CapturedStep is used from one thread at a time, and nothing else may queue work on the device from
// another thread while a call captures.
class CapturedStep {
public:
    // The step returns its outputs (the loss, and whatever else the caller reads afterwards, such as the
    // predictions): these are the graph's static outputs.
    using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;
    explicit CapturedStep(Fn step, CaptureOptions options = {});
    ~CapturedStep();  // frees the graphs and their memory
    CapturedStep(const CapturedStep&) = delete;
    CapturedStep& operator=(const CapturedStep&) = delete;

    // Returns the step's outputs (for a replay: fresh copies of the static outputs, so the caller may keep
    // them). Inputs must be defined and all on one device; mixing devices is an error. With no inputs the
    // step runs eagerly.
    std::vector<Tensor> operator()(const std::vector<Tensor>& inputs, uint64_t version = 0);
    void reset();                                // drops every graph (next calls warm up again)
    bool last_replayed() const;                  // whether the last call replayed a graph
    size_t captures() const;                     // graphs captured so far
    size_t replays() const;                      // calls that replayed a graph
    const std::string& fallback_reason() const;  // "" while nothing fell back

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dyad

DYAD_PUBLIC_END
