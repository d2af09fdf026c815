// CapturedStep: per key (input shapes, dtypes, device and the caller's version) a few eager warm-up calls,
// then one capture into a CUDA graph through kernels/cuda/runtime.h, then replays: the inputs copied into
// the graph's static buffers, one launch, the static outputs copied out. Keys live in a list with a use
// stamp; the least recently used graph goes when max_graphs would be exceeded. Without CUDA, and for CPU
// inputs, every call runs the step.
#include "dyad/capture.h"

#include <list>
#include <utility>

#include "dyad/autograd.h"
#include "dyad/error.h"

#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace dyad {

namespace {

struct Key {
    std::vector<Shape> shapes;
    std::vector<DType> dtypes;
    Device device;
    uint64_t version = 0;
    bool operator==(const Key& o) const {
        return shapes == o.shapes && dtypes == o.dtypes && device == o.device && version == o.version;
    }
};

// Keys without a graph (warming up, or eager for good) kept at most; beyond, the least recently used goes
// (it warms up again if it comes back).
constexpr size_t kMaxPlainKeys = 64;

}  // namespace

struct CapturedStep::Impl {
    struct Entry {
        Key key;
        uint64_t used = 0;            // use stamp (least recently used: smallest)
        int eager_calls = 0;          // warm-up calls so far
        bool eager_only = false;      // a capture failed: this key runs eagerly from now on
        void* graph = nullptr;        // the executable graph (runtime.h), once captured
        std::vector<Tensor> inputs;   // static inputs the graph reads
        std::vector<Tensor> outputs;  // static outputs the graph writes (graph allocations, or undefined)
    };

    Fn step;
    CaptureOptions opt;
    std::list<Entry> entries;  // a list: an Entry& stays valid while others are erased
    uint64_t clock = 0;
    bool last_replayed = false;
    size_t captures = 0, replays = 0;
    std::string reason;

    Impl(Fn f, CaptureOptions o) : step(std::move(f)), opt(o) {}
    ~Impl() {
        for (Entry& e : entries) drop_graph(e);
    }

    // The graph first (graph_destroy waits for its launches), then the static buffers it used. Graph
    // allocations still held elsewhere (gradients) stay valid: destroying a graph does not free them.
    static void drop_graph(Entry& e) noexcept {
#if DYAD_WITH_CUDA
        cuda::graph_destroy(e.graph);
#endif
        e.graph = nullptr;
        e.inputs.clear();
        e.outputs.clear();
    }

    Entry& entry_for(Key key) {
        for (Entry& e : entries)
            if (e.key == key) {
                e.used = ++clock;
                return e;
            }
        size_t plain = 0;
        for (const Entry& e : entries) plain += e.graph ? 0 : 1;
        while (plain >= kMaxPlainKeys) {
            auto lru = entries.end();
            for (auto it = entries.begin(); it != entries.end(); ++it)
                if (!it->graph && (lru == entries.end() || it->used < lru->used)) lru = it;
            entries.erase(lru);
            plain--;
        }
        entries.emplace_back();
        entries.back().key = std::move(key);
        entries.back().used = ++clock;
        return entries.back();
    }

    // Drops least recently used graphs until one more fits (the caller's entry has no graph yet, so it is
    // never the one dropped). A dropped key warms up again if it comes back.
    void make_room() {
        for (;;) {
            size_t graphs = 0;
            auto lru = entries.end();
            for (auto it = entries.begin(); it != entries.end(); ++it)
                if (it->graph) {
                    graphs++;
                    if (lru == entries.end() || it->used < lru->used) lru = it;
                }
            if (graphs < opt.max_graphs) return;
            drop_graph(*lru);
            entries.erase(lru);
        }
    }

    static std::vector<Tensor> copy_out(const std::vector<Tensor>& ts) {
        NoGradGuard ng;
        std::vector<Tensor> out;
        for (const Tensor& t : ts) out.push_back(t.defined() ? t.clone() : Tensor());
        return out;
    }

#if DYAD_WITH_CUDA
    std::vector<Tensor> call(const std::vector<Tensor>& inputs, uint64_t version) {
        Key key;
        for (const Tensor& x : inputs) {
            key.shapes.push_back(x.shape());
            key.dtypes.push_back(x.dtype());
        }
        key.device = inputs[0].device();
        key.version = version;
        Entry& e = entry_for(std::move(key));
        if (e.graph) return replay(e, inputs);
        if (e.eager_only || e.eager_calls < opt.warmup) {
            std::vector<Tensor> out = step(inputs);
            e.eager_calls++;
            return out;
        }
        return capture(e, inputs);
    }

    std::vector<Tensor> replay(Entry& e, const std::vector<Tensor>& inputs) {
        const int dev = e.key.device.index;
        {
            // Device to device, on the stream ahead of the launch, so the graph reads this call's inputs.
            NoGradGuard ng;
            for (size_t i = 0; i < inputs.size(); i++) e.inputs[i].copy_(inputs[i]);
        }
        cuda::graph_launch(e.graph, dev);
        replays++;
        last_replayed = true;
        // The static outputs are rewritten by the next launch: the caller gets copies of its own.
        return copy_out(e.outputs);
    }

    std::vector<Tensor> capture(Entry& e, const std::vector<Tensor>& inputs) {
        const int dev = e.key.device.index;
        make_room();
        // Static inputs: eager allocations, filled before the capture starts; replays refill them.
        std::vector<Tensor> statics;
        {
            NoGradGuard ng;
            for (const Tensor& x : inputs) {
                Tensor s = Tensor::empty(x.shape(), x.dtype(), x.device());
                s.copy_(x);
                statics.push_back(s);
            }
        }
        std::vector<Tensor> out;
        void* graph = nullptr;
        bool began = false;
        std::string failure;
        try {
            cuda::capture_begin(dev);
            began = true;
            out = step(statics);
            graph = cuda::capture_end(dev);
        } catch (const std::exception& ex) {
            failure = ex.what();
        } catch (...) {
            failure = "an exception that is not a std::exception";
        }
        if (graph == nullptr) {
            // The step threw while recording: the recording is discarded here. capture_end cleans up after
            // its own failures, and capture_abort then finds nothing to do. Tensors made inside the capture
            // and still held never had memory: the outputs are such; gradients the step stored are others,
            // dropped by the step's zero_grad() below.
            if (began) cuda::capture_abort(dev);
            out.clear();
            statics.clear();
            e.eager_only = true;
            reason = ::dyad::detail::str("capturing the step on ", e.key.device.str(),
                                         " failed, so it runs eagerly for these inputs from now on: ",
                                         failure.empty() ? std::string("no graph was produced") : failure);
            return step(inputs);
        }
        e.graph = graph;
        e.inputs = statics;
        // Capture hazard (7): the warm-up calls left the pool holding their activations, which the graph now
        // has in its own memory: the pool's cache goes back to the driver (a wait, once per capture) before
        // the graph's first launch asks for that memory.
        cuda::trim_pool(dev);
        try {
            // Capture hazard (2): the graph's allocations that outlive it (outputs, gradients) get memory when
            // it is launched, so it is launched before anything reads them. This launch is this call's step.
            cuda::graph_launch(e.graph, dev);
        } catch (const std::exception& ex) {
            // Never launched (out of memory, say): dropped like a failed capture. Its outputs and the gradients
            // the step stored never had memory; graph_destroy marks them so their frees are skipped, and the
            // step's zero_grad() drops the gradients when it runs eagerly now.
            drop_graph(e);
            out.clear();
            e.eager_only = true;
            reason = ::dyad::detail::str("launching the captured step on ", e.key.device.str(),
                                         " failed, so it runs eagerly for these inputs from now on: ", ex.what());
            return step(inputs);
        }
        // Kept without their autograd history: what that history held is freed now, after the launch.
        for (const Tensor& t : out) e.outputs.push_back(t.defined() ? t.detach() : Tensor());
        out.clear();
        captures++;
        std::vector<Tensor> result = copy_out(e.outputs);
        return result;
    }
#endif
};

CapturedStep::CapturedStep(Fn step, CaptureOptions options) {
    DYAD_CHECK(static_cast<bool>(step), "CapturedStep: the step function is empty");
    // No capture without an eager call first: optimizer state created inside a capture would live in graph
    // memory, which each launch makes afresh, and cuDNN's search and workspace growth cannot run there.
    DYAD_CHECK(options.warmup >= 1, "CapturedStep: warmup must be at least 1 (the eager calls create optimizer ",
               "state, choose algorithms and size workspaces before the capture), got ", options.warmup);
    DYAD_CHECK(options.max_graphs >= 1, "CapturedStep: max_graphs must be at least 1");
    impl_ = std::make_unique<Impl>(std::move(step), options);
}

CapturedStep::~CapturedStep() = default;

std::vector<Tensor> CapturedStep::operator()(const std::vector<Tensor>& inputs, uint64_t version) {
    Impl& m = *impl_;
    m.last_replayed = false;
    for (size_t i = 0; i < inputs.size(); i++) {
        DYAD_CHECK(inputs[i].defined(), "CapturedStep: input ", i, " is an undefined tensor");
        DYAD_CHECK(inputs[i].device() == inputs[0].device(),
                   "CapturedStep: inputs must all be on one device, but input 0 is on ", inputs[0].device().str(),
                   " and input ", i, " is on ", inputs[i].device().str());
    }
    if (!m.opt.enabled || inputs.empty() || !inputs[0].device().is_cuda()) return m.step(inputs);
#if DYAD_WITH_CUDA
    return m.call(inputs, version);
#else
    (void)version;
    return m.step(inputs);  // not reached: a CUDA tensor cannot exist in a build without CUDA
#endif
}

void CapturedStep::reset() {
    Impl& m = *impl_;
    for (Impl::Entry& e : m.entries) Impl::drop_graph(e);
    m.entries.clear();
    m.last_replayed = false;
}

bool CapturedStep::last_replayed() const { return impl_->last_replayed; }
size_t CapturedStep::captures() const { return impl_->captures; }
size_t CapturedStep::replays() const { return impl_->replays; }
const std::string& CapturedStep::fallback_reason() const { return impl_->reason; }

}  // namespace dyad
