// Tensor core: storage, creation, metadata, conversions, element access and in-place updates.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/elementwise.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/host_alloc.h"
#include "lib/tensor/impl.h"
#include "lib/tensor/random.h"

#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace dyad {

// ---------------------------------------------------------------------------- dtype and shape helpers
size_t dtype_size(DType t) {
    switch (t) {
        case DType::float32:
            return 4;
        case DType::float64:
            return 8;
        case DType::int32:
            return 4;
        case DType::int64:
            return 8;
        case DType::uint8:
            return 1;
        case DType::bfloat16:
            return 2;
    }
    return 0;
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::float32:
            return "float32";
        case DType::float64:
            return "float64";
        case DType::int32:
            return "int32";
        case DType::int64:
            return "int64";
        case DType::uint8:
            return "uint8";
        case DType::bfloat16:
            return "bfloat16";
    }
    return "?";
}

bool is_floating(DType t) { return t == DType::float32 || t == DType::float64 || t == DType::bfloat16; }

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + ")";
}

int64_t shape_numel(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

namespace detail {

// ---------------------------------------------------------------------------- storage
Storage::Storage(size_t n, Device dev) : nbytes(n), device(dev) {
    if (dev.is_cpu()) {
        // 64-byte alignment: one cache line, and the widest (AVX-512) vector loads.
        ptr = host_alloc(n);
        return;
    }
    DYAD_CHECK(dev.index >= 0 && dev.index < cuda_device_count(), "cannot allocate on ", dev.str(), ": ",
               cuda_built() ? "no such CUDA device (" + std::to_string(cuda_device_count()) + " available)"
                            : std::string("this build of dyad has no CUDA support"));
#if DYAD_WITH_CUDA
    ptr = cuda::malloc_device(n ? n : 1, dev.index);  // a distinct pointer even when empty
#endif
}

Storage::Storage(void* p, size_t n, Device dev, std::function<void(void*)> del)
    : ptr(p), nbytes(n), device(dev), external(true), deleter(std::move(del)) {}

Storage::~Storage() {
    if (external) {
#if DYAD_WITH_CUDA
        // Kernels queued on the memory must be done before the caller's deleter may free it.
        if (deleter && device.is_cuda()) cuda::wait_stream_quietly(device.index);
#endif
        // A destructor must not throw: a deleter that does is reported and otherwise ignored.
        if (deleter) {
            try {
                deleter(ptr);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "dyad: a from_blob deleter threw: %s\n", e.what());
            } catch (...) {
                std::fprintf(stderr, "dyad: a from_blob deleter threw\n");
            }
        }
        return;
    }
    if (device.is_cpu()) {
        host_free(ptr, nbytes);
        return;
    }
#if DYAD_WITH_CUDA
    cuda::free_device(ptr, nbytes ? nbytes : 1, device.index);
#endif
}

void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t n) {
    if (n == 0) return;
    if (dd.is_cpu() && sd.is_cpu()) {
        std::memcpy(dst, src, n);
        return;
    }
#if DYAD_WITH_CUDA
    if (dd.is_cuda() && sd.is_cpu()) return cuda::memcpy_h2d(dst, src, n, dd.index);
    if (dd.is_cpu() && sd.is_cuda()) return cuda::memcpy_d2h(dst, src, n, sd.index);
    DYAD_CHECK(dd.index == sd.index, "copy between two GPUs (", sd.str(), " -> ", dd.str(), ") is not supported");
    return cuda::memcpy_d2d(dst, src, n, dd.index);
#else
    DYAD_CHECK(false, "this build of dyad has no CUDA support");
#endif
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
    std::vector<int64_t> st(shape.size());
    int64_t s = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        st[i] = s;
        s *= shape[i];
    }
    return st;
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
    for (int64_t d : shape) DYAD_CHECK(d >= 0, "tensor shape ", shape_str(shape), " has a negative size");
    // The element and byte counts must fit int64 (every index and offset is one) before anything is allocated.
    int64_t numel = 1, nbytes = 0;
    for (int64_t d : shape)
        DYAD_CHECK(!__builtin_mul_overflow(numel, d, &numel), "tensor shape ", shape_str(shape),
                   " has more elements than a 64-bit count can hold");
    DYAD_CHECK(!__builtin_mul_overflow(numel, int64_t(dtype_size(dtype)), &nbytes), "tensor shape ", shape_str(shape),
               " of ", dtype_name(dtype), " needs more bytes than a 64-bit count can hold");
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(size_t(nbytes), device);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& t, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = t.impl()->storage;
    impl->shape = shape;
    impl->strides = strides;
    impl->offset = offset;
    impl->dtype = t.dtype();
    return Tensor(std::move(impl));
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
    const int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
    DYAD_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a tensor with ", ndim,
               " dims (expected ", lo, " to ", hi, ")");
    return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

// Converting/strided copy of src into dst (same shape, same device), any dtypes, on that device's kernels.
static void same_device_copy(const Tensor& dst, const Tensor& src) {
    const StridedShape s = make_strided(dst.shape(), {dst.strides(), src.strides()}, "copy");
    visit_dtype(dst.dtype(), [&](auto to) {
        visit_dtype(src.dtype(), [&](auto ti) {
            using TO = decltype(to);
            using TI = decltype(ti);
            DYAD_DISPATCH_TEMPLATE(dst.device(), copy, dst.data<TO>(), src.data<TI>(), s);
        });
    });
}

// dst (any strides) = src broadcast to dst's shape, converting dtype, between any two devices. A copy
// between devices moves src's elements as they are (made contiguous on its own device first) and
// converts and broadcasts on dst's device.
void copy_into(const Tensor& dst, const Tensor& src) {
    if (dst.numel() == 0) return;
    if (dst.device() == src.device())
        return same_device_copy(dst, make_view(src, dst.shape(), broadcast_strides(src, dst.shape()), src.offset()));
    NoGradGuard ng;
    const Tensor packed = src.contiguous();
    if (dst.dtype() == src.dtype() && dst.shape() == src.shape() && dst.is_contiguous()) {
        copy_bytes(dst.raw_data(), dst.device(), packed.raw_data(), packed.device(),
                   size_t(dst.numel()) * dtype_size(dst.dtype()));
        return;
    }
    Tensor moved = make_tensor(packed.shape(), packed.dtype(), dst.device());
    copy_bytes(moved.raw_data(), moved.device(), packed.raw_data(), packed.device(),
               size_t(packed.numel()) * dtype_size(packed.dtype()));
    same_device_copy(dst, make_view(moved, dst.shape(), broadcast_strides(moved, dst.shape()), 0));
}

}  // namespace detail

using detail::make_tensor;

// ---------------------------------------------------------------------------- creation
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) { return make_tensor(shape, dtype, device); }

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
    Tensor t = make_tensor(shape, dtype, device);
    t.fill_(value);
    return t;
}

Tensor Tensor::arange(double start, double end, double step, DType dtype, Device device) {
    DYAD_CHECK(step != 0 && std::isfinite(step) && std::isfinite(start) && std::isfinite(end),
               "arange: bad range start=", start, " end=", end, " step=", step);
    const double count = std::ceil((end - start) / step);
    const int64_t n = count > 0 ? int64_t(count) : 0;
    Tensor host = make_tensor({n}, DType::float64, Device::cpu());
    double* p = host.data<double>();
    for (int64_t i = 0; i < n; i++) p[i] = start + double(i) * step;
    return host.to(dtype).to(device);
}

template <typename T>
static Tensor from_vector_impl(const std::vector<T>& data, const Shape& shape, Device device) {
    DYAD_CHECK(int64_t(data.size()) == shape_numel(shape), "from_vector: ", data.size(), " values do not fill shape ",
               shape_str(shape), " (", shape_numel(shape), " elements)");
    Tensor host = make_tensor(shape, dtype_of<T>(), Device::cpu());
    if (!data.empty()) std::memcpy(host.raw_data(), data.data(), data.size() * sizeof(T));
    return host.to(device);
}
Tensor Tensor::from_vector(const std::vector<float>& d, const Shape& s, Device dev) {
    return from_vector_impl(d, s, dev);
}
Tensor Tensor::from_vector(const std::vector<double>& d, const Shape& s, Device dev) {
    return from_vector_impl(d, s, dev);
}
Tensor Tensor::from_vector(const std::vector<int32_t>& d, const Shape& s, Device dev) {
    return from_vector_impl(d, s, dev);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& d, const Shape& s, Device dev) {
    return from_vector_impl(d, s, dev);
}
Tensor Tensor::from_vector(const std::vector<uint8_t>& d, const Shape& s, Device dev) {
    return from_vector_impl(d, s, dev);
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device,
                         std::function<void(void*)> deleter) {
    for (int64_t d : shape) DYAD_CHECK(d >= 0, "from_blob: shape ", shape_str(shape), " has a negative size");
    return from_blob(data, shape, detail::contiguous_strides(shape), dtype, device, std::move(deleter));
}

Tensor Tensor::from_blob(void* data, const Shape& shape, const std::vector<int64_t>& strides, DType dtype,
                         Device device, std::function<void(void*)> deleter) {
    const char* op = "from_blob";
    DYAD_CHECK(strides.size() == shape.size(), op, ": ", strides.size(), " strides ", shape_str(strides), " for ",
               shape.size(), " dims ", shape_str(shape));
    // The elements span [0, 1 + sum (size - 1) * stride) of the buffer; every count must fit int64.
    int64_t numel = 1, span = 1, nbytes = 0;
    for (size_t d = 0; d < shape.size(); d++) {
        DYAD_CHECK(shape[d] >= 0, op, ": shape ", shape_str(shape), " has a negative size");
        DYAD_CHECK(strides[d] >= 0, op, ": stride ", strides[d], " of dim ", d, " is negative (strides ",
                   shape_str(strides), ")");
        DYAD_CHECK(!__builtin_mul_overflow(numel, shape[d], &numel), op, ": shape ", shape_str(shape),
                   " has more elements than a 64-bit count can hold");
    }
    if (numel == 0) span = 0;
    for (size_t d = 0; d < shape.size() && numel > 0; d++) {
        int64_t step = 0;
        DYAD_CHECK(
            !__builtin_mul_overflow(shape[d] - 1, strides[d], &step) && !__builtin_add_overflow(span, step, &span), op,
            ": shape ", shape_str(shape), " with strides ", shape_str(strides), " overflows 64 bits");
    }
    DYAD_CHECK(!__builtin_mul_overflow(span, int64_t(dtype_size(dtype)), &nbytes), op, ": shape ", shape_str(shape),
               " of ", dtype_name(dtype), " needs more bytes than a 64-bit count can hold");
    DYAD_CHECK(data != nullptr || numel == 0, op, ": data is null but shape ", shape_str(shape), " has ", numel,
               " elements");
    DYAD_CHECK(reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) == 0, op, ": data ", data,
               " is not aligned to the ", dtype_size(dtype), "-byte elements of ", dtype_name(dtype));
    DYAD_CHECK(device.is_cpu() || (device.index >= 0 && device.index < cuda_device_count()), op, ": no device ",
               device.str(), ": ",
               cuda_built() ? "no such CUDA device (" + std::to_string(cuda_device_count()) + " available)"
                            : std::string("this build of dyad has no CUDA support"));
    auto impl = std::make_shared<detail::TensorImpl>();
    impl->storage = std::make_shared<detail::Storage>(data, size_t(nbytes), device, std::move(deleter));
    impl->shape = shape;
    impl->strides = strides;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

template <typename Draw>
static Tensor random_impl(const char* op, const Shape& shape, DType dtype, Device device, Draw draw) {
    DYAD_CHECK(is_floating(dtype), op, ": dtype must be float32 or float64, got ", dtype_name(dtype));
    Tensor host = make_tensor(shape, DType::float64, Device::cpu());
    double* p = host.data<double>();
    for (int64_t i = 0, n = host.numel(); i < n; i++) p[i] = draw();
    return host.to(dtype).to(device);
}
Tensor Tensor::randn(const Shape& shape, DType dtype, Device device) {
    return random_impl("randn", shape, dtype, device, [] { return detail::global_generator().normal(); });
}
Tensor Tensor::rand(const Shape& shape, DType dtype, Device device) {
    return random_impl("rand", shape, dtype, device, [] { return detail::global_generator().uniform(); });
}

// ---------------------------------------------------------------------------- metadata
#define DYAD_REQUIRE_DEFINED(what) DYAD_CHECK(impl_ != nullptr, what, ": the tensor is undefined")

const Shape& Tensor::shape() const {
    DYAD_REQUIRE_DEFINED("shape()");
    return impl_->shape;
}
const std::vector<int64_t>& Tensor::strides() const {
    DYAD_REQUIRE_DEFINED("strides()");
    return impl_->strides;
}
int64_t Tensor::offset() const {
    DYAD_REQUIRE_DEFINED("offset()");
    return impl_->offset;
}
int64_t Tensor::dim() const { return int64_t(shape().size()); }
int64_t Tensor::size(int64_t d) const { return shape()[size_t(detail::wrap_dim(d, dim(), "size"))]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const {
    DYAD_REQUIRE_DEFINED("dtype()");
    return impl_->dtype;
}
Device Tensor::device() const {
    DYAD_REQUIRE_DEFINED("device()");
    return impl_->storage->device;
}

bool Tensor::is_contiguous() const {
    int64_t expect = 1;
    for (size_t i = shape().size(); i-- > 0;) {
        if (impl_->shape[i] != 1 && impl_->strides[i] != expect) return false;
        expect *= impl_->shape[i];
    }
    return true;
}

std::string Tensor::str() const {
    if (!defined()) return "Tensor(undefined)";
    return "Tensor" + shape_str(shape()) + " " + dtype_name(dtype()) + " " + device().str();
}

void Tensor::check_dtype(DType expected, const char* what) const {
    DYAD_REQUIRE_DEFINED(what);
    DYAD_CHECK(impl_->dtype == expected, what, ": tensor has dtype ", dtype_name(impl_->dtype), ", not ",
               dtype_name(expected));
}

void* Tensor::raw_data() const {
    DYAD_REQUIRE_DEFINED("raw_data()");
    return static_cast<char*>(impl_->storage->ptr) + impl_->offset * int64_t(dtype_size(impl_->dtype));
}

// ---------------------------------------------------------------------------- element access
double Tensor::item() const {
    DYAD_CHECK(numel() == 1, "item(): needs a tensor with one element, got shape ", shape_str(shape()));
    const Tensor h = to(Device::cpu());
    return detail::visit_dtype(h.dtype(), [&](auto t) { return double(*h.data<decltype(t)>()); });
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
    check_dtype(dtype_of<T>(), "to_vector<T>()");
    Tensor h = to(Device::cpu()).contiguous();
    const T* p = h.data<T>();
    return std::vector<T>(p, p + h.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

// ---------------------------------------------------------------------------- conversion
// to(), contiguous() and clone() are differentiable: their backward passes the gradient through
// (converted back to the source dtype/device).
static Tensor copy_with_grad(const Tensor& src, DType dtype, Device device, const char* name,
                             MemoryFormat format = MemoryFormat::contiguous) {
    Tensor out = detail::empty_in(src.shape(), dtype, device, format);
    detail::copy_into(out, src);
    if (is_floating(src.dtype()) && is_floating(dtype)) {
        const DType src_dtype = src.dtype();
        const Device src_device = src.device();
        autograd::record(name, {src}, out, [src_dtype, src_device](const Tensor& dy, autograd::GradSink& g) {
            detail::accumulate(g.grad(0), dy.to(src_device).to(src_dtype));
        });
        autograd::mark_format_aware(out);  // accumulate reads and writes any layout
    }
    return out;
}

Tensor Tensor::to(Device device) const {
    if (device == this->device()) return *this;
    return copy_with_grad(*this, dtype(), device, "to(device)");
}

Tensor Tensor::to(DType dt) const {
    if (dt == dtype()) return *this;
    return copy_with_grad(*this, dt, device(), "to(dtype)");
}

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    return copy_with_grad(*this, dtype(), device(), "contiguous");
}

const char* memory_format_name(MemoryFormat f) {
    return f == MemoryFormat::channels_last ? "channels_last" : "contiguous";
}

bool Tensor::is_contiguous(MemoryFormat format) const {
    if (format == MemoryFormat::contiguous) return is_contiguous();
    if (dim() != 4) return false;
    // Dense NHWC: the dims in the order C, W, H, N, each stride the product of the sizes before it.
    int64_t expect = 1;
    for (int64_t d : {1, 3, 2, 0}) {
        if (impl_->shape[size_t(d)] != 1 && impl_->strides[size_t(d)] != expect) return false;
        expect *= impl_->shape[size_t(d)];
    }
    return true;
}

// The strides of a channels_last tensor as empty_in makes it: NHWC row-major seen through NCHW indices,
// size-1 dims included.
static std::vector<int64_t> channels_last_strides(const Shape& s) { return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]}; }

MemoryFormat Tensor::memory_format() const {
    if (dim() != 4 || !is_contiguous(MemoryFormat::channels_last)) return MemoryFormat::contiguous;
    if (!is_contiguous()) return MemoryFormat::channels_last;
    // Dense in both (one channel, or 1x1 images): the strides of the size-1 dims tell which it was made as,
    // so a one-channel image converted to channels_last stays so and its convolutions' results follow.
    return strides() == channels_last_strides(shape()) && strides() != detail::contiguous_strides(shape())
               ? MemoryFormat::channels_last
               : MemoryFormat::contiguous;
}

Tensor Tensor::contiguous(MemoryFormat format) const {
    if (format == MemoryFormat::contiguous) return contiguous();
    DYAD_CHECK(defined(), "contiguous(channels_last): the tensor is undefined");
    DYAD_CHECK(dim() == 4, "contiguous(channels_last): needs a 4-D (N, C, H, W) tensor, got ", shape_str(shape()));
    if (memory_format() == format) return *this;
    // A recorded copy into NHWC memory (for a tensor dense in both formats, the same bytes with the
    // channels_last strides).
    return copy_with_grad(*this, dtype(), device(), "contiguous", format);
}

Tensor Tensor::clone() const { return copy_with_grad(*this, dtype(), device(), "clone"); }

// ---------------------------------------------------------------------------- in-place
// A source that shares memory with the destination but is a different view of it (x.copy_(x.t())) would
// be overwritten while it is read: such a source is copied first. The identical view is safe.
static Tensor unaliased(const Tensor& dst, const Tensor& src) {
    const bool same_view = src.offset() == dst.offset() && src.strides() == dst.strides() && src.shape() == dst.shape();
    if (src.impl()->storage != dst.impl()->storage || same_view) return src;
    NoGradGuard ng;
    return src.clone();
}

// Checks an in-place update and counts it in the storage's version, which backward compares with the
// version its saved tensors had when they were recorded.
static void check_inplace(const Tensor& t, const char* op) {
    DYAD_CHECK(t.defined(), op, ": the tensor is undefined");
    DYAD_CHECK(!(t.requires_grad() && is_grad_enabled()), op, ": in-place update of a tensor that requires grad (",
               t.str(), ") while grad mode is on; wrap it in NoGradGuard");
    // An expanded view has several elements at one address: each would be written many times, in any order.
    // (An empty tensor has stride 0 in places too, but no elements to write.)
    for (size_t d = 0; d < t.shape().size() && t.numel() > 0; d++)
        DYAD_CHECK(t.strides()[d] != 0 || t.shape()[d] <= 1, op, ": in-place update of an expanded view (", t.str(),
                   ", dimension ", d, " has stride 0), whose elements share memory; update a contiguous() copy");
    t.impl()->storage->version.fetch_add(1, std::memory_order_relaxed);
}

Tensor& Tensor::fill_(double value) {
    check_inplace(*this, "fill_");
    if (numel() == 0) return *this;
    if (!is_contiguous()) {
        detail::copy_into(*this, Tensor::full({}, value, dtype(), device()));
        return *this;
    }
    detail::visit_dtype(dtype(), [&](auto t) {
        using T = decltype(t);
        DYAD_DISPATCH_TEMPLATE(device(), fill<T>, data<T>(), static_cast<T>(value), numel());
    });
    return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    detail::check_defined("copy_", src, "src");
    DYAD_CHECK(broadcast_shapes(src.shape(), shape(), "copy_") == shape(), "copy_: source shape ",
               shape_str(src.shape()), " does not broadcast to ", shape_str(shape()));
    detail::copy_into(*this, unaliased(*this, src));
    return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
    check_inplace(*this, "add_");
    detail::check_same("add_", *this, other);
    detail::check_floating("add_", *this);
    DYAD_CHECK(broadcast_shapes(other.shape(), shape(), "add_") == shape(), "add_: shape ", shape_str(other.shape()),
               " does not broadcast to ", shape_str(shape()));
    NoGradGuard ng;
    detail::accumulate(*this, alpha == 1.0 ? unaliased(*this, other) : mul(other, alpha));
    return *this;
}

Tensor& Tensor::mul_(double factor) {
    check_inplace(*this, "mul_");
    detail::check_floating("mul_", *this);
    const StridedShape s = detail::make_strided(shape(), {strides(), strides()}, "mul_");
    DYAD_DISPATCH_FLOAT(device(), dtype(), unary_fwd, UnaryOp::mul_scalar, data<T>(), data<T>(), s, T(factor), T(0));
    return *this;
}

}  // namespace dyad
