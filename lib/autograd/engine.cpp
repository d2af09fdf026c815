// The tape: recording nodes and running backward in reverse topological order.
//
// Gradient flow: every node reached from the root gets one gradient buffer, allocated zeroed the first
// time a consumer asks for it and handed to every later consumer, whose kernels add into it. A node runs
// only after all its consumers have run (Kahn's algorithm on the reachable subgraph), so its buffer is
// complete. A leaf's accumulator node hands out the leaf's existing grad() when it has one (gradients
// accumulate across backward calls) or a new buffer that becomes grad(). A buffer is laid out as its tensor
// (row-major, or channels_last for a channels_last activation); a node that is not format_aware sees
// row-major gradients only, the engine converting at its boundary.
#include <atomic>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dyad/autograd.h"
#include "lib/autograd/node.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

namespace {
thread_local bool g_grad_enabled = true;
// The callbacks queued during the backward pass running on this thread (null outside backward).
thread_local std::vector<std::function<void()>>* g_callbacks = nullptr;
}  // namespace

bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

void zero_grad(const std::vector<Tensor>& params) {
    for (const Tensor& p : params) const_cast<Tensor&>(p).zero_grad();
}

namespace autograd {

// The node that receives t's gradient: its grad_fn, or its (lazily created) accumulator when t is a leaf.
static std::shared_ptr<Node> gradient_edge(const Tensor& t) {
    auto& impl = *t.impl();
    if (!impl.requires_grad) return nullptr;
    if (impl.grad_fn) return impl.grad_fn;
    std::shared_ptr<Node> acc = impl.grad_accumulator.lock();
    if (!acc) {
        acc = std::make_shared<Node>();
        acc->name = "accumulate_grad";
        acc->leaf = t.impl();
        acc->output = {t.shape(), t.dtype(), t.device(), t.memory_format()};
        impl.grad_accumulator = acc;
    }
    return acc;
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output, BackwardFn backward,
            std::initializer_list<Tensor> saved) {
    record(name, inputs, output, std::move(backward), std::vector<Tensor>(saved));
}

void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output, BackwardFn backward,
            const std::vector<Tensor>& saved) {
    if (!g_grad_enabled) return;
    bool any = false;
    for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
    if (!any) return;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->backward = std::move(backward);
    node->output = {output.shape(), output.dtype(), output.device(), output.memory_format()};
    for (const Tensor& t : inputs) {
        node->next.push_back(t.defined() ? gradient_edge(t) : nullptr);
        if (t.defined())
            node->inputs.push_back({t.shape(), t.dtype(), t.device(), t.memory_format()});
        else
            node->inputs.push_back({{}, DType::float32, Device::cpu()});
    }
    for (const Tensor& t : saved)
        if (t.defined())
            node->saved.push_back(
                {t.impl()->storage, t.impl()->storage->version.load(std::memory_order_relaxed), t.shape()});
    auto& out = *output.impl();
    out.grad_fn = std::move(node);
    out.requires_grad = true;
}

void record(const char* name, std::initializer_list<Tensor> inputs, Tensor& output, BackwardFn backward,
            std::initializer_list<Tensor> saved) {
    record(name, std::vector<Tensor>(inputs), output, std::move(backward), saved);
}

void mark_format_aware(const Tensor& output) {
    if (output.defined() && output.impl()->grad_fn) output.impl()->grad_fn->format_aware = true;
}

void queue_callback(std::function<void()> fn) {
    DYAD_CHECK(g_callbacks != nullptr, "autograd::queue_callback: no backward pass is running on this thread");
    g_callbacks->push_back(std::move(fn));
}

// A leaf's gradient is final for this pass: its post-accumulate hooks run (on a copy of the list, so that a
// hook may remove hooks).
static void run_grad_hooks(const std::shared_ptr<detail::TensorImpl>& leaf) {
    if (leaf->grad_hooks.empty()) return;
    const auto hooks = leaf->grad_hooks;
    const Tensor t(leaf);
    for (const auto& h : hooks) h.second(t);
}

// Runs backward from `root` (a node) with gradient `seed` for its output.
static void run_backward(const std::shared_ptr<Node>& root, const Tensor& seed) {
    std::vector<std::function<void()>> callbacks;
    struct CallbackScope {
        std::vector<std::function<void()>>* prev;
        explicit CallbackScope(std::vector<std::function<void()>>* mine) : prev(g_callbacks) { g_callbacks = mine; }
        ~CallbackScope() { g_callbacks = prev; }
    } callback_scope(&callbacks);

    // Reachable nodes and how many consumers each has (iterative DFS: deep graphs must not overflow).
    std::unordered_map<Node*, int> pending;
    std::vector<Node*> stack{root.get()};
    pending[root.get()] = 0;
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        for (const auto& nx : n->next) {
            if (!nx) continue;
            auto it = pending.find(nx.get());
            if (it == pending.end()) {
                pending[nx.get()] = 1;
                stack.push_back(nx.get());
            } else {
                it->second++;
            }
        }
    }

    std::unordered_map<Node*, Tensor> grads;
    // The buffer that node n's gradient accumulates into, created on first use.
    auto buffer_for = [&grads](Node* n) -> Tensor {
        auto it = grads.find(n);
        if (it != grads.end()) return it->second;
        Tensor buf;
        const InputMeta& m = n->output;
        if (n->leaf && n->leaf->grad.defined() && n->leaf->grad.is_contiguous(m.format)) {
            buf = n->leaf->grad;  // keep accumulating into the leaf's existing gradient
        } else {
            buf = detail::empty_in(m.shape, m.dtype, m.device, m.format);
            buf.zero_();
            if (n->leaf && n->leaf->grad.defined()) detail::accumulate(buf, n->leaf->grad);
        }
        grads.emplace(n, buf);
        return buf;
    };

    NoGradGuard no_grad;  // backward closures compute with plain kernels; nothing is recorded
    if (root->leaf) {
        // backward() called on a leaf: its gradient is the seed itself.
        detail::accumulate(buffer_for(root.get()), seed);
    } else {
        grads.emplace(root.get(), seed);
    }
    std::vector<Node*> ready{root.get()};
    while (!ready.empty()) {
        Node* n = ready.back();
        ready.pop_back();
        if (n->leaf) {
            n->leaf->grad = buffer_for(n);
            run_grad_hooks(n->leaf);
        } else {
            Tensor dy = grads.at(n);
            std::vector<Tensor> bufs(n->next.size());
            for (size_t i = 0; i < n->next.size(); i++)
                if (n->next[i]) bufs[i] = buffer_for(n->next[i].get());
            // A node that only handles row-major gradients gets a row-major dy and, for each channels_last
            // buffer, a zeroed row-major stand-in that is added into the buffer after its backward.
            std::vector<std::pair<Tensor, Tensor>> stand_ins;  // (buffer, stand-in)
            if (!n->format_aware) {
                if (!dy.is_contiguous()) dy = dy.contiguous();
                for (Tensor& b : bufs)
                    if (b.defined() && !b.is_contiguous()) {
                        Tensor row_major = Tensor::zeros(b.shape(), b.dtype(), b.device());
                        stand_ins.emplace_back(b, row_major);
                        b = row_major;
                    }
            }
            for (const Node::Saved& sv : n->saved) {
                const auto st = sv.storage.lock();
                const uint64_t now = st ? st->version.load(std::memory_order_relaxed) : sv.version;
                DYAD_CHECK(now == sv.version, "backward: a tensor of shape ", shape_str(sv.shape), " that ", n->name,
                           " saved for its gradient was updated in place after ", n->name, " used it (version ",
                           sv.version, ", now ", now,
                           "); the gradient would be wrong. Update a copy (clone()) instead, or do the update "
                           "after backward");
            }
            GradSink sink(std::move(bufs));
            n->backward(dy, sink);
            for (const auto& [buffer, row_major] : stand_ins) detail::accumulate(buffer, row_major);
        }
        grads.erase(n);  // frees intermediate gradients as soon as they are consumed
        for (const auto& nx : n->next)
            if (nx && --pending[nx.get()] == 0) ready.push_back(nx.get());
    }
    for (size_t i = 0; i < callbacks.size(); i++) {
        const std::function<void()> fn = std::move(callbacks[i]);  // fn may queue more (the vector may grow)
        fn();
    }
}

}  // namespace autograd

// ---------------------------------------------------------------------------- Tensor's autograd API
bool Tensor::requires_grad() const { return defined() && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
    DYAD_CHECK(defined(), "requires_grad_: the tensor is undefined");
    DYAD_CHECK(is_leaf(), "requires_grad_: only leaves can change requires_grad (", str(),
               " was computed by an op; use detach() first)");
    DYAD_CHECK(!on || is_floating(dtype()), "requires_grad_: only floating tensors can require grad, got ",
               dtype_name(dtype()));
    impl_->requires_grad = on;
    return *this;
}

bool Tensor::is_leaf() const { return defined() && impl_->grad_fn == nullptr; }

Tensor Tensor::grad() const {
    DYAD_CHECK(defined(), "grad(): the tensor is undefined");
    return impl_->grad;
}

void Tensor::set_grad(const Tensor& g) {
    DYAD_CHECK(defined(), "set_grad: the tensor is undefined");
    if (g.defined())
        DYAD_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad: gradient ",
                   g.str(), " does not match tensor ", str());
    impl_->grad = g;
}

int64_t Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) {
    DYAD_CHECK(defined(), "register_post_accumulate_grad_hook: the tensor is undefined");
    DYAD_CHECK(is_leaf() && requires_grad(), "register_post_accumulate_grad_hook: ", str(),
               " is not a leaf that requires grad (only those accumulate a gradient)");
    DYAD_CHECK(bool(hook), "register_post_accumulate_grad_hook: the hook is empty");
    static std::atomic<int64_t> next{1};
    const int64_t handle = next.fetch_add(1);
    impl_->grad_hooks.emplace_back(handle, std::move(hook));
    return handle;
}

void Tensor::remove_post_accumulate_grad_hook(int64_t handle) {
    DYAD_CHECK(defined(), "remove_post_accumulate_grad_hook: the tensor is undefined");
    auto& hooks = impl_->grad_hooks;
    for (auto it = hooks.begin(); it != hooks.end(); ++it)
        if (it->first == handle) {
            hooks.erase(it);
            return;
        }
}

void Tensor::zero_grad() {
    DYAD_CHECK(defined(), "zero_grad: the tensor is undefined");
    impl_->grad = Tensor();
}

Tensor& Tensor::set_data(const Tensor& data) {
    DYAD_CHECK(defined() && data.defined(), "set_data: both tensors must be defined");
    DYAD_CHECK(is_leaf(), "set_data: only leaves can take new data (", str(), " was computed by an op)");
    DYAD_CHECK(!requires_grad() || is_floating(data.dtype()), "set_data: ", str(),
               " requires grad, so its data must be floating, got ", data.str());
    DYAD_CHECK(!impl_->grad.defined() || data.shape() == shape(), "set_data: ", str(),
               " has a gradient, so the new data must keep its shape, got ", data.str());
    if (data.is_same(*this)) return *this;
    Tensor g = impl_->grad;
    if (g.defined()) {
        NoGradGuard ng;
        g = g.to(data.device()).to(data.dtype());
        if (g.dim() == 4 && g.memory_format() != data.memory_format()) g = g.contiguous(data.memory_format());
    }
    const auto& src = data.impl();
    impl_->storage = src->storage;
    impl_->shape = src->shape;
    impl_->strides = src->strides;
    impl_->offset = src->offset;
    impl_->dtype = src->dtype;
    impl_->grad = g;
    return *this;
}

Tensor Tensor::detach() const {
    DYAD_CHECK(defined(), "detach: the tensor is undefined");
    return detail::make_view(*this, shape(), strides(), offset());
}

void Tensor::backward() const {
    DYAD_CHECK(defined(), "backward: the tensor is undefined");
    DYAD_CHECK(numel() == 1, "backward: a gradient must be given for a result with ", numel(), " elements (shape ",
               shape_str(shape()), "); only one-element results default to 1");
    backward(Tensor::ones(shape(), dtype(), device()));
}

void Tensor::backward(const Tensor& gradient) const {
    DYAD_CHECK(defined(), "backward: the tensor is undefined");
    DYAD_CHECK(requires_grad(), "backward: ", str(),
               " does not require grad (no input of the ops that made it requires grad, or grad mode was off)");
    DYAD_CHECK(gradient.defined() && gradient.shape() == shape() && gradient.dtype() == dtype() &&
                   gradient.device() == device(),
               "backward: gradient ", gradient.str(), " must match the result ", str());
    const auto root = autograd::gradient_edge(*this);
    NoGradGuard ng;  // the seed's layout conversion is not part of any graph
    autograd::run_backward(root, gradient.contiguous(root->output.format));
}

}  // namespace dyad
