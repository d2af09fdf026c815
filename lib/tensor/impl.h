// Internal tensor representation, shared by lib/. Users see only the Tensor handle.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "dyad/tensor.h"

namespace dyad {
namespace autograd {
struct Node;
}

namespace detail {

// A block of device or host memory, freed when the last tensor using it goes away.
struct Storage {
    void* ptr = nullptr;
    size_t nbytes = 0;
    Device device;
    // Counts in-place updates through Tensor's in-place methods (fill_, copy_, add_, mul_): backward checks
    // that the tensors it saved were not changed after they were recorded.
    std::atomic<uint64_t> version{0};
    // Memory dyad did not allocate (Tensor::from_blob): never freed by dyad; `deleter`, when set, is called
    // with ptr once, by the destructor.
    bool external = false;
    std::function<void(void*)> deleter;
    Storage(size_t nbytes, Device device);  // allocates (CPU: 64-byte aligned)
    // Wraps the caller's memory (no allocation, no copy).
    Storage(void* ptr, size_t nbytes, Device device, std::function<void(void*)> deleter);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    std::vector<int64_t> strides;
    int64_t offset = 0;
    DType dtype = DType::float32;

    // Autograd. A leaf that requires grad owns its gradient and is reached through its accumulator node
    // (held weakly here, strongly by the nodes that use it: no cycle). A non-leaf owns grad_fn.
    bool requires_grad = false;
    Tensor grad;
    std::shared_ptr<autograd::Node> grad_fn;
    std::weak_ptr<autograd::Node> grad_accumulator;
    // register_post_accumulate_grad_hook's hooks with their handles, called in registration order.
    std::vector<std::pair<int64_t, std::function<void(const Tensor&)>>> grad_hooks;
};

std::vector<int64_t> contiguous_strides(const Shape& shape);
// A new tensor of `shape` on fresh storage, contiguous.
Tensor make_tensor(const Shape& shape, DType dtype, Device device);
// A view of t's storage with other metadata (no autograd).
Tensor make_view(const Tensor& t, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset);
// Normalises a possibly negative dim for a tensor of rank `ndim`; throws naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// Calls f(T{}) with T the C++ element type of `dt`, and returns what f returns.
template <typename F>
decltype(auto) visit_dtype(DType dt, F&& f) {
    switch (dt) {
        case DType::float64:
            return f(double{});
        case DType::int32:
            return f(int32_t{});
        case DType::int64:
            return f(int64_t{});
        case DType::uint8:
            return f(uint8_t{});
        case DType::bfloat16:
            return f(bfloat16{});
        case DType::float32:
            break;
    }
    return f(float{});
}

// Raw memory helpers, dispatched by device.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);
// dst (any strides) = src broadcast to dst's shape, converting the dtype, between any two devices. No
// autograd; dst must not overlap src (unless they are the same view).
void copy_into(const Tensor& dst, const Tensor& src);

}  // namespace detail
}  // namespace dyad
