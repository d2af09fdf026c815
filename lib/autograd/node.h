// The tape's node type and the recording call that every differentiable op uses.
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "dyad/tensor.h"

namespace dyad::autograd {

// What backward needs to allocate an input's gradient buffer: a gradient is laid out as its tensor was
// (a channels_last activation gets a channels_last gradient).
struct InputMeta {
    Shape shape;
    DType dtype;
    Device device;
    MemoryFormat format = MemoryFormat::contiguous;
};

class GradSink;
// Called with the gradient of the node's output (output's shape; row-major unless the node is
// format_aware, then in the output's memory format) and a sink that hands out one gradient buffer per
// input. Kernels ACCUMULATE into those buffers.
using BackwardFn = std::function<void(const Tensor& dy, GradSink& sink)>;

struct Node {
    const char* name = "";
    // One entry per input: the node that receives that input's gradient, or null when the input does not
    // require grad.
    std::vector<std::shared_ptr<Node>> next;
    std::vector<InputMeta> inputs;
    InputMeta output;  // shape/dtype/device/format of the gradient this node receives
    BackwardFn backward;
    // False (the default): backward sees a row-major dy and row-major buffers (the engine converts
    // channels_last gradients on the way in and adds row-major stand-ins back on the way out). True: dy
    // comes in the output's format and each buffer in its input's format, as they are; set by ops whose
    // backward handles any dense layout (mark_format_aware).
    bool format_aware = false;
    // Set for a leaf's accumulator node: the leaf whose grad() receives the gradient. Strong: the leaf
    // holds its accumulator only weakly, so there is no cycle.
    std::shared_ptr<detail::TensorImpl> leaf;
    // The storages of the forward tensors backward reads, with their versions when the node was recorded:
    // an in-place update in between would make the gradient silently wrong, so backward throws instead.
    struct Saved {
        std::weak_ptr<detail::Storage> storage;
        uint64_t version = 0;
        Shape shape;
    };
    std::vector<Saved> saved;
};

// Gradient buffers for one node's inputs, owned by the engine: dense in the input's shape, dtype and device
// (row-major, or channels_last for a format_aware node whose input was), zero or already holding gradient
// from other consumers (kernels add into them).
class GradSink {
public:
    explicit GradSink(std::vector<Tensor> buffers) : buffers_(std::move(buffers)) {}
    // Undefined when input i does not need a gradient: callers skip that input's kernel.
    const Tensor& grad(size_t i) const { return buffers_.at(i); }
    bool needs(size_t i) const { return buffers_.at(i).defined(); }

private:
    std::vector<Tensor> buffers_;
};

// Records `output = op(inputs)` on the tape: does nothing when grad mode is off or no input requires
// grad. The backward closure must not capture `output` itself (that is a reference cycle); capture
// output.detach() when backward needs the forward result. `saved` lists the forward tensors the closure
// reads (inputs, their contiguous copies, the output): backward fails with a clear error when one of them
// was updated in place after recording.
void record(const char* name, std::initializer_list<Tensor> inputs, Tensor& output, BackwardFn backward,
            std::initializer_list<Tensor> saved = {});
void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output, BackwardFn backward,
            std::initializer_list<Tensor> saved = {});
void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output, BackwardFn backward,
            const std::vector<Tensor>& saved);

// Marks the node that made `output` (when one was recorded) format_aware: its backward takes dy in output's
// memory format and writes each input's gradient in that input's format.
void mark_format_aware(const Tensor& output);

// Queues fn to run once the backward pass running on this thread has finished with every node (PyTorch's
// queue_callback): DataParallel completes its gradient reduction there. Only during backward (from a node's
// backward or a gradient hook); callbacks run in the order queued and may queue more.
void queue_callback(std::function<void()> fn);

// True when grad mode is on and some input requires grad (ops may skip saving state otherwise).
bool needs_grad(std::initializer_list<Tensor> inputs);

}  // namespace dyad::autograd
