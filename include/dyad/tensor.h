// Tensor: an n-dimensional view (shape, strides, offset) of shared storage on a device, with a dtype.
// Copies of a Tensor are handles to the same tensor (like std::shared_ptr); views share storage.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "dyad/bfloat16.h"
#include "dyad/device.h"
#include "dyad/error.h"
#include "dyad/export.h"

// The tensor's internals (lib/tensor/impl.h): opaque here, and not exported.
namespace dyad::detail {
struct TensorImpl;
struct Storage;
}  // namespace dyad::detail

DYAD_PUBLIC_BEGIN

namespace dyad {

// ---------------------------------------------------------------------------- dtype
// float32: everything; float64: the naive kernels (gradient checks); int32: labels and indices (argmax,
// pooling windows); int64: labels and indices as PyTorch writes them (topk's indices; gather, index_select
// and cross_entropy take int32 or int64); uint8: images and masks (comparisons, where); bfloat16: activations
// in half the memory, float32's range with 8 significant bits (dyad/bfloat16.h), computed in float32.
enum class DType { float32, float64, int32, int64, uint8, bfloat16 };

// How the elements of a 4-D (N, C, H, W) tensor lie in memory. contiguous: row-major, NCHW (every other
// rank too). channels_last: NHWC, the C values of one pixel next to each other (strides H*W*C, 1, W*C, C),
// what tensor cores and cuDNN's fastest convolutions read. The shape and every index stay (N, C, H, W) in
// both: the format is a property of the strides, as in PyTorch. Ops take inputs in either format and give
// 4-D results in their input's format (the first input's, for several).
enum class MemoryFormat { contiguous, channels_last };
const char* memory_format_name(MemoryFormat f);  // "contiguous", "channels_last"
size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool is_floating(DType t);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
    return DType::float32;
}
template <>
constexpr DType dtype_of<double>() {
    return DType::float64;
}
template <>
constexpr DType dtype_of<int32_t>() {
    return DType::int32;
}
template <>
constexpr DType dtype_of<int64_t>() {
    return DType::int64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
    return DType::uint8;
}
template <>
constexpr DType dtype_of<bfloat16>() {
    return DType::bfloat16;
}

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(2, 3, 4)"
int64_t shape_numel(const Shape& s);

// Seeds the calling thread's generator behind randn/rand and dropout: the same seed gives the same numbers on
// every machine (the generator and the normal transform are dyad's own, not the C++ library's). Each
// thread has its own generator, starting from the same default seed, so two threads never draw from one
// stream and a thread's numbers do not depend on what other threads do.
void manual_seed(uint64_t seed);
// The calling thread's generator state, to save and restore (checkpoints resume the same random stream).
struct RngState {
    uint64_t s[4];
};
RngState rng_state();
void set_rng_state(const RngState& state);  // an all-zero state is an error

class Tensor {
public:
    Tensor() = default;  // undefined tensor: defined() is false
    bool defined() const { return impl_ != nullptr; }

    // ------------------------------------------------------------------------ creation
    // Memory on the CPU is 64-byte aligned. empty() leaves values unspecified.
    static Tensor empty(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
    static Tensor zeros(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
    static Tensor ones(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
    static Tensor full(const Shape& shape, double value, DType dtype = DType::float32, Device device = Device::cpu());
    // Values start, start+step, ... while < end (> end for a negative step); 1-D.
    static Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::float32,
                         Device device = Device::cpu());
    // Copies `data` (row-major) into a new tensor of `shape`; data.size() must equal the element count.
    static Tensor from_vector(const std::vector<float>& data, const Shape& shape, Device device = Device::cpu());
    static Tensor from_vector(const std::vector<double>& data, const Shape& shape, Device device = Device::cpu());
    static Tensor from_vector(const std::vector<int32_t>& data, const Shape& shape, Device device = Device::cpu());
    static Tensor from_vector(const std::vector<int64_t>& data, const Shape& shape, Device device = Device::cpu());
    static Tensor from_vector(const std::vector<uint8_t>& data, const Shape& shape, Device device = Device::cpu());
    // Wraps memory the caller owns, without a copy: `data` holds the elements of `shape` in `dtype`,
    // row-major and contiguous, or laid out by `strides` (in elements, each >= 0) in the second form. It is a
    // host pointer for Device::cpu() and a device pointer of that GPU for Device::cuda(i); it must be aligned
    // to the element size, and may be null only when the tensor has no elements. Errors (a negative size, a
    // bad pointer or stride, a missing device) throw before anything is taken: the deleter is then not called.
    // Lifetime: the tensor, its views (reshape, slice, select, ...) and every copy of the handle read and
    // write the caller's memory, so it must stay valid until the last of them is gone. Results of ops are new
    // tensors and never alias it (to(), contiguous() and to(dtype) return the tensor itself when there is
    // nothing to do). Without a deleter dyad never frees the memory; with one, deleter(data) is called exactly
    // once, on the thread that drops the last handle, and on a GPU only after the work queued so far on
    // dyad's stream has finished. Writes through the tensor show in the caller's buffer and the other way
    // round: on the CPU at once; on a GPU in stream order (call synchronize() before other code reads what
    // dyad wrote, and finish other streams' writes before dyad reads the memory).
    static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(),
                            std::function<void(void*)> deleter = {});
    static Tensor from_blob(void* data, const Shape& shape, const std::vector<int64_t>& strides, DType dtype,
                            Device device = Device::cpu(), std::function<void(void*)> deleter = {});
    // Standard normal / uniform [0, 1) samples from the generator seeded by manual_seed (floating dtypes).
    static Tensor randn(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());
    static Tensor rand(const Shape& shape, DType dtype = DType::float32, Device device = Device::cpu());

    // ------------------------------------------------------------------------ metadata
    const Shape& shape() const;
    const std::vector<int64_t>& strides() const;  // in elements
    int64_t offset() const;                       // in elements, into the storage
    int64_t dim() const;
    int64_t size(int64_t dim) const;  // negative dims count from the end
    int64_t numel() const;
    DType dtype() const;
    Device device() const;
    bool is_contiguous() const;  // row-major with no gaps
    // Whether the elements lie densely in `format` (channels_last: 4-D only; size-1 dims' strides do not
    // count, so a tensor can be contiguous in both formats).
    bool is_contiguous(MemoryFormat format) const;
    // channels_last when the tensor is 4-D, dense in NHWC and not row-major, or dense in both (one channel,
    // 1x1 images) and made as channels_last (contiguous(channels_last), whose size-1 dims' strides say so);
    // contiguous otherwise.
    MemoryFormat memory_format() const;
    std::string str() const;  // short description: "Tensor(2, 3) float32 cpu"

    // ------------------------------------------------------------------------ data access
    // Pointer to the first element (storage + offset). T must match dtype(); CPU or CUDA pointer
    // depending on device(). Strides apply: use contiguous() first for flat access.
    template <typename T>
    T* data() const {
        check_dtype(dtype_of<T>(), "data<T>()");
        return static_cast<T*>(raw_data());
    }
    void* raw_data() const;
    // The single element of a one-element tensor, converted to double (waits for the GPU).
    double item() const;
    // All elements in row-major order, copied to the host. T must match dtype().
    template <typename T>
    std::vector<T> to_vector() const;

    // ------------------------------------------------------------------------ conversion
    Tensor to(Device device) const;  // a copy on `device` (or *this when already there)
    Tensor to(DType dtype) const;    // a converted copy (or *this when already that dtype)
    Tensor contiguous() const;       // *this when contiguous, else a row-major copy
    // *this when already dense in `format`, else a copy laid out so (channels_last needs a 4-D tensor);
    // differentiable, the gradient comes back in the input's layout.
    Tensor contiguous(MemoryFormat format) const;
    Tensor clone() const;  // always a new contiguous copy

    // ------------------------------------------------------------------------ views (no copy)
    // All are differentiable: their backward routes the gradient to the viewed elements.
    Tensor reshape(const Shape& shape) const;  // a view when strides allow, else a copy; one dim may be -1
    Tensor view(const Shape& shape) const;     // like reshape but never copies (throws instead)
    Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
    Tensor transpose(int64_t dim0, int64_t dim1) const;
    Tensor t() const;  // transpose of a 2-D tensor
    Tensor permute(const std::vector<int64_t>& dims) const;
    Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // Python-like bounds
    Tensor select(int64_t dim, int64_t index) const;                                // removes dim
    Tensor squeeze() const;                                                         // drops every size-1 dim
    Tensor squeeze(int64_t dim) const;  // drops `dim`, which must have size 1
    Tensor unsqueeze(int64_t dim) const;
    Tensor expand(const Shape& shape) const;  // broadcast view (stride 0 on expanded dims)

    // ------------------------------------------------------------------------ autograd
    // Leaves that require grad collect gradients in grad() when backward() runs on a result.
    bool requires_grad() const;
    Tensor& requires_grad_(bool on = true);  // leaves only
    bool is_leaf() const;
    Tensor grad() const;  // undefined until a backward pass reaches this leaf
    void set_grad(const Tensor& g);
    void zero_grad();  // drops the gradient (the next backward starts from zero)
    // Calls hook(leaf) whenever a backward pass has finished accumulating this leaf's gradient into grad()
    // (PyTorch's register_post_accumulate_grad_hook): grad() then holds everything this pass adds to it.
    // Hooks run on the thread that runs backward, with grad mode off, in registration order; an exception
    // from a hook ends the backward pass. Returns a handle for remove_post_accumulate_grad_hook. Leaves that
    // require grad only.
    int64_t register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook);
    void remove_post_accumulate_grad_hook(int64_t handle);  // an unknown handle does nothing
    // Backward from a one-element result (gradient 1), or from any result with an explicit gradient of
    // the same shape. Gradients accumulate (+=) into leaves' grad().
    void backward() const;
    void backward(const Tensor& gradient) const;
    Tensor detach() const;  // same storage, cut from the graph
    // Makes this tensor, and every handle to it, use data's storage, shape, strides, dtype and device, while
    // keeping its autograd identity (requires_grad, and grad(), which is converted to the new dtype and
    // device). Module::to() moves parameters this way, so an optimizer or a member built before the move
    // still holds the moved tensor (libtorch's set_data). Leaves only; a tensor that requires grad needs a
    // floating data; data must have the same shape unless grad() is undefined. Not recorded: do not call it
    // between a forward and its backward.
    Tensor& set_data(const Tensor& data);

    // ------------------------------------------------------------------------ in-place (no autograd)
    // Throw when the tensor requires grad while grad mode is on (the tape would be wrong).
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }
    Tensor& copy_(const Tensor& src);                       // src is broadcast to shape(), converted
    Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other (broadcast)
    Tensor& mul_(double factor);

    // ------------------------------------------------------------------------ internals
    explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}
    const std::shared_ptr<detail::TensorImpl>& impl() const { return impl_; }
    // True when both handles refer to the same tensor (not merely equal values).
    bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

private:
    void check_dtype(DType expected, const char* what) const;
    std::shared_ptr<detail::TensorImpl> impl_;
};

// Readable printing: values (summarised past 1000 elements), shape, dtype, device.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace dyad

DYAD_PUBLIC_END
