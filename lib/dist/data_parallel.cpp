// DataParallel: gradient buckets all-reduced from the gradient hooks while backward runs (dist.h says what
// it guarantees). Communication goes through comm.h's non-blocking sums; nothing here calls MPI itself.
//
// A bucket is one flat tensor: its parameters' gradients back to back, then one "used" flag per parameter
// (1 where this rank produced a gradient for it, 0 where it did not). The flags are summed with the
// gradients, so after the reduction a parameter's flag says how many ranks used it: 0 means none did, and
// its grad() stays undefined, as in one process; this costs one element per parameter and no collective
// of its own.
#include <chrono>
#include <set>
#include <string>

#include "dyad/autograd.h"
#include "dyad/dist.h"
#include "dyad/error.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dist/comm.h"

namespace dyad::dist {

namespace {

// Every rank takes rank 0's values of `tensors`, packed per dtype into one flat tensor (one broadcast per
// dtype instead of one per tensor). Every rank visits the same dtypes in the same order, present or not,
// so the collectives match; a rank whose tensors differ in count or size gets an error on every rank from
// broadcast's own check.
void broadcast_from_rank0(const std::vector<Tensor>& tensors, const char* what) {
    NoGradGuard no_grad;
    for (const Tensor& t : tensors) {
        const DType d = t.dtype();
        DYAD_CHECK(d == DType::float32 || d == DType::float64 || d == DType::int32 || d == DType::int64,
                   "DataParallel: cannot broadcast ", what, " of dtype ", dtype_name(d));
    }
    for (DType dt : {DType::float32, DType::float64, DType::int32, DType::int64}) {
        std::vector<Tensor> parts;
        Device device = Device::cpu();
        for (const Tensor& t : tensors)
            if (t.dtype() == dt) {
                parts.push_back(t.reshape({t.numel()}));
                device = t.device();
            }
        Tensor flat = parts.empty() ? Tensor::zeros({0}, dt, device) : cat(parts).contiguous();
        broadcast(flat, 0);
        int64_t at = 0;
        for (const Tensor& t : tensors)
            if (t.dtype() == dt) {
                const_cast<Tensor&>(t).copy_(flat.slice(0, at, at + t.numel()).reshape(t.shape()));
                at += t.numel();
            }
    }
}

// The parameters wrapped by a live DataParallel: a second one on the same parameters would reduce every
// gradient twice.
std::set<const void*>& wrapped() {
    static std::set<const void*> s;
    return s;
}

}  // namespace

struct DataParallel::Impl {
    struct Param {
        Tensor t;
        size_t position = 0;  // its index in module.parameters() (those that do not require grad counted)
        size_t bucket = 0;
        int64_t offset = 0;  // first element in the bucket's flat tensor
        size_t slot = 0;     // its position in the bucket (its flag is at grad_numel + slot)
        int64_t hook = 0;
        bool ready = false;  // its gradient is in the bucket for this pass
    };
    struct Bucket {
        DType dtype = DType::float32;
        std::vector<size_t> params;  // indices into Impl::params
        int64_t grad_numel = 0;
        Tensor flat;  // grad_numel gradients, then one flag per parameter
        size_t pending = 0;
        int request = -1;
        bool done = false;
        double ready_at = 0;  // steady-clock seconds when its last gradient arrived
    };

    DataParallel& dp;
    DataParallelOptions options;
    std::vector<Param> params;  // module.parameters() order (those that require grad)
    std::vector<Bucket> buckets;
    std::vector<std::vector<size_t>> bucket_params;
    std::vector<const void*> registered;  // in wrapped() while this DataParallel lives
    size_t next_to_start = 0;
    bool in_pass = false;  // a backward pass has delivered gradients and queued finish()
    double last_wait = 0;
    size_t started_early = 0, done_early = 0;
    std::vector<double> last_ready;

    Impl(DataParallel& d, DataParallelOptions o) : dp(d), options(o) {}

    void hook(size_t i) {
        if (!dp.sync_ || world_size() == 1) return;  // no_sync, or nothing to reduce
        if (!in_pass) {
            in_pass = true;
            autograd::queue_callback([this] { finish(); });
        }
        Param& p = params[i];
        DYAD_CHECK(!p.ready, "DataParallel: parameter ", i, " ", p.t.str(),
                   " received its gradient twice in one backward pass");
        pack(p, p.t.grad());
        if (options.overlap) start_ready();
        progress();
    }

    // Copies g (or zeros, for a parameter without a gradient on this rank) into the parameter's slot, and its
    // "used" flag. Tensor ops: on a GPU they are ordered on the stream, with no host access.
    void pack(Param& p, const Tensor& g) {
        Bucket& b = buckets[p.bucket];
        NoGradGuard ng;
        Tensor slot = b.flat.slice(0, p.offset, p.offset + p.t.numel());
        if (g.defined())
            slot.copy_(g.reshape({p.t.numel()}));
        else
            slot.zero_();
        const int64_t flag = b.grad_numel + int64_t(p.slot);
        b.flat.slice(0, flag, flag + 1).fill_(g.defined() ? 1.0 : 0.0);
        p.ready = true;
        if (--b.pending == 0)
            b.ready_at = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }

    // Starts every complete bucket that is next in order: the same order on every rank.
    void start_ready() {
        while (next_to_start < buckets.size() && buckets[next_to_start].pending == 0) {
            Bucket& b = buckets[next_to_start];
            b.request = detail::start_sum(b.flat.raw_data(), b.flat.numel(), b.dtype, b.flat.device(),
                                          "gradient bucket " + std::to_string(next_to_start) + " of " +
                                              std::to_string(buckets.size()) + " (" + std::to_string(b.params.size()) +
                                              " parameters)");
            next_to_start++;
        }
    }

    // Lets MPI move the started reductions on (they progress only inside MPI calls).
    void progress() {
        for (size_t k = 0; k < next_to_start; k++) {
            Bucket& b = buckets[k];
            if (!b.done && detail::test(b.request)) b.done = true;
        }
    }

    // End of the backward pass: the buckets still missing gradients take what the parameters hold (a
    // gradient accumulated under no_sync that this pass did not add to) or zeros, every bucket starts and
    // completes, and the means go back into grad().
    void finish() {
        in_pass = false;
        for (Param& p : params)
            if (!p.ready) pack(p, p.t.grad());
        progress();
        started_early = next_to_start;
        done_early = 0;
        for (const Bucket& b : buckets) done_early += b.done ? 1 : 0;
        start_ready();
        const auto t0 = std::chrono::steady_clock::now();
        for (Bucket& b : buckets) {
            detail::wait(b.request);
            b.done = true;
        }
        last_wait = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double scale = 1.0 / double(world_size());
        for (Param& p : params) {
            const Bucket& b = buckets[p.bucket];
            if (b.flat.device().is_cuda())
                unpack_gpu(p, b, scale);
            else if (b.dtype == DType::float32)
                unpack<float>(p, b, scale);
            else
                unpack<double>(p, b, scale);
        }
        for (Param& p : params) p.ready = false;
        last_ready.clear();
        for (const Bucket& b : buckets) last_ready.push_back(b.ready_at);
        for (Bucket& b : buckets) {
            b.pending = b.params.size();
            b.request = -1;
            b.done = false;
        }
        next_to_start = 0;
    }

    // On a GPU the "used" counts stay on the device (reading them would make the host wait every step):
    // every parameter gets the mean, zeros where no rank produced a gradient.
    void unpack_gpu(Param& p, const Bucket& b, double scale) {
        NoGradGuard ng;
        const Tensor mean = mul(b.flat.slice(0, p.offset, p.offset + p.t.numel()).reshape(p.t.shape()), scale);
        Tensor g = p.t.grad();
        if (g.defined() && g.is_contiguous())
            g.copy_(mean);
        else
            p.t.set_grad(mean);
    }

    template <typename T>
    void unpack(Param& p, const Bucket& b, double scale) {
        const T* src = b.flat.data<T>() + p.offset;
        const T ranks_used = b.flat.data<T>()[b.grad_numel + int64_t(p.slot)];
        if (ranks_used == T(0)) return;  // no rank produced a gradient: grad() stays as it is (undefined)
        Tensor g = p.t.grad();
        if (!g.defined() || !g.is_contiguous()) {
            g = Tensor::empty(p.t.shape(), p.t.dtype());
            p.t.set_grad(g);
        }
        T* dst = g.data<T>();
        const T s = T(scale);
        for (int64_t i = 0, n = p.t.numel(); i < n; i++) dst[i] = src[i] * s;
    }
};

DataParallel::DataParallel(nn::Module& module, DataParallelOptions options)
    : module_(module), impl_(std::make_unique<Impl>(*this, options)) {
    DYAD_CHECK(initialized(), "DataParallel: call dist::init() first");
    DYAD_CHECK(options.bucket_cap_bytes > 0 && options.first_bucket_cap_bytes > 0,
               "DataParallel: bucket caps must be positive (got ", options.bucket_cap_bytes, " and ",
               options.first_bucket_cap_bytes, " bytes)");
    const std::vector<Tensor> all = module.parameters();
    for (const Tensor& t : all) {
        DYAD_CHECK(t.device() == all[0].device(), "DataParallel: parameter ", t.str(), " is on another device than ",
                   all[0].str(), " (one device per rank)");
        DYAD_CHECK(t.device().is_cpu() || nccl_built(), "DataParallel: parameter ", t.str(),
                   " is on a GPU, and this build has no NCCL for GPU ranks (cmake's 'dyad: NCCL' line says why)");
        DYAD_CHECK(t.dtype() == DType::float32 || t.dtype() == DType::float64, "DataParallel: parameter ", t.str(),
                   " is neither float32 nor float64");
    }
    for (const Tensor& t : all)
        DYAD_CHECK(!wrapped().count(t.impl().get()), "DataParallel: parameter ", t.str(),
                   " already belongs to another DataParallel (destroy that one first)");
    // The same module everywhere: the parameter count first (one scalar each way), then every parameter's
    // and buffer's values from rank 0.
    const double n = double(all.size());
    const double lo = all_reduce(n, ReduceOp::min), hi = all_reduce(n, ReduceOp::max);
    DYAD_CHECK(lo == hi, "DataParallel: the ranks' modules differ: rank ", rank(), " has ", all.size(),
               " parameters, and the ranks have between ", lo, " and ", hi);
    broadcast_from_rank0(all, "a parameter");
    std::vector<Tensor> buffers;
    for (const auto& [name, t] : module.named_buffers()) buffers.push_back(t);
    broadcast_from_rank0(buffers, "a buffer");

    Impl& I = *impl_;
    for (size_t i = 0; i < all.size(); i++)
        if (all[i].requires_grad()) {
            Impl::Param p;
            p.t = all[i];
            p.position = i;
            I.params.push_back(p);
        }
    // Buckets over the parameters in reverse order; a new bucket when the cap would be passed or the
    // dtype changes.
    for (size_t k = I.params.size(); k-- > 0;) {
        Impl::Param& p = I.params[k];
        const size_t bytes = size_t(p.t.numel()) * dtype_size(p.t.dtype());
        bool fresh = I.buckets.empty() || I.buckets.back().dtype != p.t.dtype();
        if (!fresh) {
            const Impl::Bucket& b = I.buckets.back();
            const size_t have = size_t(b.grad_numel) * dtype_size(b.dtype);
            const size_t cap = I.buckets.size() == 1 ? options.first_bucket_cap_bytes : options.bucket_cap_bytes;
            fresh = have > 0 && have + bytes > cap;
        }
        if (fresh) {
            I.buckets.emplace_back();
            I.buckets.back().dtype = p.t.dtype();
        }
        Impl::Bucket& b = I.buckets.back();
        p.bucket = I.buckets.size() - 1;
        p.offset = b.grad_numel;
        p.slot = b.params.size();
        b.grad_numel += p.t.numel();
        b.params.push_back(k);
    }
    for (Impl::Bucket& b : I.buckets) {
        b.flat = Tensor::zeros({b.grad_numel + int64_t(b.params.size())}, b.dtype, I.params[b.params[0]].t.device());
        b.pending = b.params.size();
        std::vector<size_t> idx;
        for (size_t k : b.params) idx.push_back(I.params[k].position);
        I.bucket_params.push_back(idx);
    }
    for (const Tensor& t : all) {
        wrapped().insert(t.impl().get());
        I.registered.push_back(t.impl().get());
    }
    for (size_t k = 0; k < I.params.size(); k++)
        I.params[k].hook =
            I.params[k].t.register_post_accumulate_grad_hook([impl = impl_.get(), k](const Tensor&) { impl->hook(k); });
}

DataParallel::~DataParallel() {
    for (Impl::Param& p : impl_->params) p.t.remove_post_accumulate_grad_hook(p.hook);
    for (const void* t : impl_->registered) wrapped().erase(t);
}

Tensor DataParallel::operator()(const Tensor& x) { return (*this)(std::vector<Tensor>{x}); }

Tensor DataParallel::operator()(const std::vector<Tensor>& inputs) {
    DYAD_CHECK(!impl_->in_pass, "DataParallel: the previous backward pass did not finish");
    if (impl_->options.broadcast_buffers && module_.is_training()) sync_buffers();
    return inputs.size() == 1 ? module_(inputs[0]) : module_(inputs);
}

void DataParallel::sync_buffers() {
    if (world_size() == 1) return;
    std::vector<Tensor> buffers;
    for (const auto& [name, t] : module_.named_buffers()) buffers.push_back(t);
    if (!buffers.empty()) broadcast_from_rank0(buffers, "a buffer");
}

const std::vector<std::vector<size_t>>& DataParallel::bucket_params() const { return impl_->bucket_params; }

std::vector<size_t> DataParallel::bucket_bytes() const {
    std::vector<size_t> out;
    for (const Impl::Bucket& b : impl_->buckets) out.push_back(size_t(b.grad_numel) * dtype_size(b.dtype));
    return out;
}

double DataParallel::last_wait_seconds() const { return impl_->last_wait; }
const std::vector<double>& DataParallel::last_bucket_ready_times() const { return impl_->last_ready; }
size_t DataParallel::last_buckets_started_early() const { return impl_->started_early; }
size_t DataParallel::last_buckets_done_early() const { return impl_->done_early; }

}  // namespace dyad::dist
