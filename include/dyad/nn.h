// Modules: named parameters and buffers, train/eval, device moves, and the layers of a small CNN or a
// ResNet. Parameter names follow PyTorch's state_dict keys for the same structure ("0.weight",
// "layer1.0.bn1.running_mean", ...), so weights move between the two through a checkpoint (see io.h).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dyad/export.h"
#include "dyad/ops.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;

// Observes every Module call on this thread while installed (summary() and per-layer profilers use it):
// the module, its first input and the output it returned. Install with RecorderScope.
struct ForwardRecorder {
    virtual ~ForwardRecorder() = default;
    virtual void record(Module& module, const Tensor& input, const Tensor& output) = 0;
};
// Installs a recorder for the calling thread for its lifetime (nullptr: none), restoring the previous one.
class RecorderScope {
public:
    explicit RecorderScope(ForwardRecorder* recorder);
    ~RecorderScope();
    RecorderScope(const RecorderScope&) = delete;
    RecorderScope& operator=(const RecorderScope&) = delete;

private:
    ForwardRecorder* prev_;
};

// A layer or a model: named parameters and buffers, children, a training flag, and forward().
//
// Subclass it and override one forward: forward(x) for one input, or forward(inputs) for several. A module
// is called through operator() (model(x), or (*ptr)(x) on a pointer; ModuleHolder below makes model(x) work
// on a shared one), which is where summary() and profilers observe it: call children that way too.
class Module {
public:
    virtual ~Module() = default;
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Runs forward() on one input or on several (model(x), model(a, b) or model({a, b, c})).
    Tensor operator()(const Tensor& x);
    Tensor operator()(const std::vector<Tensor>& inputs);
    template <typename... More>
    Tensor operator()(const Tensor& a, const Tensor& b, const More&... more) {
        return (*this)(std::vector<Tensor>{a, b, more...});
    }
    // One input: by default the input list {x}. Several: by default an error naming the module (it takes
    // neither). Override the one that fits; calls of the other form reach it.
    virtual Tensor forward(const Tensor& x);
    virtual Tensor forward(const std::vector<Tensor>& inputs);

    // The class name as PyTorch prints it ("Conv2d"; by default the C++ class name without namespaces)
    // and its arguments ("3, 32, kernel_size=(3, 3), ...").
    virtual std::string type_name() const;
    virtual std::string extra_repr() const { return ""; }

    // Depth first, in registration order: this module's own entries, then each child's under
    // "<child>.". Tensors are the module's own handles (parameters require grad).
    NamedTensors named_parameters(const std::string& prefix = "") const;
    std::vector<Tensor> parameters() const;
    NamedTensors named_buffers(const std::string& prefix = "") const;
    // Parameters and buffers in PyTorch's state_dict order (per module: parameters, then buffers, then
    // children).
    NamedTensors state_dict(const std::string& prefix = "") const;
    // Every module below this one with its qualified name ("" for this module itself), depth first.
    std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
    // Calls fn on every module below this one, children first, then on this one (PyTorch's apply), e.g. to
    // initialise weights: model.apply([](nn::Module& m) { ... }).
    void apply(const std::function<void(Module&)>& fn);

    // Copies every entry of `state` into the tensor of the same name (shapes must match exactly; dtypes
    // are converted, and integer values must fit an integer destination: PyTorch's int64
    // num_batches_tracked goes into dyad's int32 counter). strict: every parameter and buffer must be
    // present and no other name may appear.
    // Everything is checked before anything is copied: on error the module is unchanged and the message
    // names the entry and both shapes.
    void load_state_dict(const NamedTensors& state, bool strict = true);

    // Training mode (dropout active, batch norm uses batch statistics) for this module and its children.
    // Virtual so a module can react (the default sets the flag and recurses).
    virtual void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Moves every parameter and buffer to `device`, or converts the floating ones to `dtype` (float32 or
    // float64; integer buffers keep theirs). In place (Tensor::set_data): every handle to a parameter, an
    // optimizer's or a member's, refers to the moved tensor, and gradients move with it; an optimizer built
    // before the move keeps working. Parameters stay leaves that require grad.
    void to(Device device);
    void to(DType dtype);
    // Lays out every 4-D parameter (the convolutions' weights) in `format`, in place as above: with
    // channels_last a convolution reads its weight as (K, R, S, C) directly instead of through a copy per
    // call, and optimizers keep the parameters' state in the same layout.
    void to(MemoryFormat format);
    // Sets grad() of every parameter to undefined.
    void zero_grad();
    int64_t num_parameters() const;

protected:
    // Registration returns the stored handle. Names must be unique within the module and contain no '.'.
    Tensor& register_parameter(const std::string& name, Tensor t);  // sets requires_grad
    Tensor& register_buffer(const std::string& name, Tensor t);
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        add_child(name, m);
        return m;
    }

private:
    void add_child(const std::string& name, std::shared_ptr<Module> m);
    void check_new_name(const std::string& name) const;

    bool training_ = true;
    // Deques: layers keep pointers to their registered tensors, so elements must never move.
    std::deque<std::pair<std::string, Tensor>> params_;
    std::deque<std::pair<std::string, Tensor>> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A shared module that can be called directly: model(x) instead of (*model)(x), with -> for its members.
// Converts to std::shared_ptr of the module or of any base (Sequential{...}, register_module, functions
// that take a ModulePtr), as libtorch's module holders do. make<M>(args...) builds one.
template <typename M>
class ModuleHolder {
public:
    ModuleHolder() = default;
    // From a shared module of M or of a class derived from it (implicit, like libtorch's holders).
    template <typename T, typename = std::enable_if_t<std::is_convertible_v<T*, M*>>>
    ModuleHolder(std::shared_ptr<T> impl) : impl_(std::move(impl)) {}  // NOLINT(google-explicit-constructor)
    template <typename T, typename = std::enable_if_t<std::is_convertible_v<T*, M*>>>
    ModuleHolder(const ModuleHolder<T>& other) : impl_(other.ptr()) {}  // NOLINT(google-explicit-constructor)
    template <typename... Args>
    Tensor operator()(const Args&... args) const {
        return (*impl_)(args...);
    }
    M* operator->() const { return impl_.get(); }
    M& operator*() const { return *impl_; }
    M* get() const { return impl_.get(); }
    const std::shared_ptr<M>& ptr() const { return impl_; }
    template <typename T>
    operator std::shared_ptr<T>() const {  // NOLINT: implicit on purpose
        return impl_;
    }
    explicit operator bool() const { return impl_ != nullptr; }

private:
    std::shared_ptr<M> impl_;
};

template <typename M, typename... Args>
ModuleHolder<M> make(Args&&... args) {
    return ModuleHolder<M>(std::make_shared<M>(std::forward<Args>(args)...));
}

using ModulePtr = std::shared_ptr<Module>;

// Layer fusion (on by default). In Sequential: a ReLU followed by a MaxPool2d runs as one relu_max_pool2d,
// and a Conv2d followed by a ReLU (and no MaxPool2d after it) as one conv2d_relu; only the exact classes
// fuse: a subclass (which may override forward) always runs its own forward. In BasicBlock and the
// ResNet's stem: a batch norm followed by a ReLU runs as one batch_norm2d_relu. The results and gradients
// are the same bits as running the layers one by one; the fused forms save a pass over the activation
// forward and backward. While a ForwardRecorder is installed (summary(), per-layer profiles) every layer
// runs on its own so that each is seen. The setting is process-wide.
void set_fuse_layers(bool on);
bool fuse_layers();
// Whether fusions apply on this thread now: fuse_layers() and no ForwardRecorder installed.
bool fusion_active();

// Children named "0", "1", ... run in order (with the fusions above).
class Sequential : public Module {
public:
    Sequential() = default;
    Sequential(std::initializer_list<ModulePtr> modules);
    Sequential& push_back(ModulePtr m);
    size_t size() const { return children().size(); }
    ModulePtr operator[](size_t i) const;
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Sequential"; }
};

// Weight (out, in, k, k) and bias (out): PyTorch's default initialisation, uniform in +-1/sqrt(fan_in)
// (kaiming_uniform with a = sqrt(5)), fan_in = in * kh * kw; drawn from the manual_seed generator.
class Conv2d : public Module {
public:
    Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
           bool bias = true);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Conv2d"; }
    std::string extra_repr() const override;
    Tensor& weight() { return *weight_; }
    Tensor& bias() { return *bias_; }  // undefined without bias
    // relu(forward(x)) as one conv2d_relu (Sequential's fusion).
    Tensor forward_relu(const Tensor& x);

private:
    int64_t in_, out_;
    Size2 kernel_, stride_, padding_;
    Tensor* weight_;
    Tensor* bias_;
    Tensor no_bias_;
};

// Weight (out, in), bias (out): uniform in +-1/sqrt(in) as in PyTorch.
class Linear : public Module {
public:
    Linear(int64_t in_features, int64_t out_features, bool bias = true);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Linear"; }
    std::string extra_repr() const override;
    Tensor& weight() { return *weight_; }
    Tensor& bias() { return *bias_; }

private:
    int64_t in_, out_;
    Tensor* weight_;
    Tensor* bias_;
    Tensor no_bias_;
};

class ReLU : public Module {
public:
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
public:
    explicit MaxPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
    Tensor forward(const Tensor& x) override;
    // forward(relu(x)) as one relu_max_pool2d (Sequential's fusion).
    Tensor forward_relu(const Tensor& x);
    std::string type_name() const override { return "MaxPool2d"; }
    std::string extra_repr() const override;

private:
    Size2 kernel_, stride_, padding_;
};

class AvgPool2d : public Module {
public:
    explicit AvgPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "AvgPool2d"; }
    std::string extra_repr() const override;

private:
    Size2 kernel_, stride_, padding_;
};

class AdaptiveAvgPool2d : public Module {
public:
    explicit AdaptiveAvgPool2d(Size2 output_size);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::string extra_repr() const override;

private:
    Size2 output_;
};

// Flattens dims start_dim..end_dim (PyTorch's nn.Flatten defaults: 1, -1).
class Flatten : public Module {
public:
    explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Flatten"; }
    std::string extra_repr() const override;

private:
    int64_t start_, end_;
};

class Dropout : public Module {
public:
    explicit Dropout(double p = 0.5);
    Tensor forward(const Tensor& x) override;  // active in training mode only
    std::string type_name() const override { return "Dropout"; }
    std::string extra_repr() const override;

private:
    double p_;
};

// Parameters weight (ones) and bias (zeros) when affine; buffers running_mean (zeros), running_var
// (ones) and num_batches_tracked (int32 scalar, counts training forwards) as in PyTorch.
class BatchNorm2d : public Module {
public:
    explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true);
    Tensor forward(const Tensor& x) override;
    // relu(forward(x)) as one batch_norm2d_relu (the fusion in BasicBlock and the ResNet's stem).
    Tensor forward_relu(const Tensor& x);
    // Synchronised (PyTorch's SyncBatchNorm): in training on several ranks, the batch statistics are those
    // of the global batch, over every rank (dist::sync_batch_norm2d); otherwise plain batch norm. Off by
    // default (per-rank statistics); dist::convert_sync_batchnorm sets it on a whole model.
    void set_sync(bool on) { sync_ = on; }
    bool is_sync() const { return sync_; }
    std::string type_name() const override { return sync_ ? "SyncBatchNorm" : "BatchNorm2d"; }
    std::string extra_repr() const override;

private:
    Tensor run(const Tensor& x, bool relu);

    int64_t c_;
    double eps_, momentum_;
    bool affine_;
    bool sync_ = false;
    Tensor* weight_ = nullptr;  // null without affine
    Tensor* bias_ = nullptr;
    Tensor* running_mean_;
    Tensor* running_var_;
    Tensor* num_batches_tracked_;
    Tensor none_;
};

// torchvision's ResNet BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn, plus the input (through a 1x1
// conv(stride)+bn "downsample" when the stride or the width changes), then relu. Convs have no bias.
// Names: conv1, bn1, conv2, bn2, downsample.0, downsample.1.
class BasicBlock : public Module {
public:
    BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "BasicBlock"; }

private:
    std::shared_ptr<Conv2d> conv1_, conv2_;
    std::shared_ptr<BatchNorm2d> bn1_, bn2_;
    std::shared_ptr<Sequential> downsample_;  // null when the skip is the identity
};

// A table of every leaf layer (a module without children) in call order: qualified name, type, output
// shape and parameter count (a module called twice is listed twice, counted once); then total and
// trainable parameters, the input size, the forward activation memory (the sum of the leaves' outputs)
// and the parameter size in MiB. Runs one forward pass without autograd on zeros of `input_shape` (batch
// dim included) on the model's device, in eval mode; each module's training mode is restored afterwards.
std::string summary(Module& model, const Shape& input_shape);
// Floating-point operations of one forward pass on an input of `input_shape` through the model's
// convolutions and linear layers: 2 x outputs x inputs per output (the direct convolution's count, whatever
// algorithm runs; element-wise layers are not counted). A training step is about three times this (forward,
// backward data, backward weights). Runs one forward without autograd in eval mode, as summary() does.
double forward_flop(Module& model, const Shape& input_shape);

// ---------------------------------------------------------------------------- initialisation
// torch.nn.init's functions, with its names, defaults and formulas: each fills `t` in place (any device,
// floating dtype; not recorded, so parameters can be initialised directly) from the calling thread's
// generator (manual_seed), and returns it. Fans of a tensor of shape (out, in, k...) are
// fan_in = in * prod(k) and fan_out = out * prod(k); tensors of fewer than 2 dimensions have no fans (an
// error names the function and the shape).
namespace init {
enum class FanMode { fan_in, fan_out };
enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };
// The recommended gain: 1 (linear, conv, sigmoid), 5/3 (tanh), sqrt(2) (relu),
// sqrt(2 / (1 + param^2)) (leaky_relu, param the negative slope, default 0.01), 3/4 (selu).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)); N(0, gain^2 * 2 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);
Tensor& xavier_normal_(Tensor& t, double gain = 1.0);
// U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a);
// N(0, (gain / sqrt(fan))^2). PyTorch's defaults: a = 0, fan_in, leaky_relu.
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                         Nonlinearity nonlinearity = Nonlinearity::leaky_relu);
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu);
}  // namespace init

}  // namespace dyad::nn

namespace dyad::models {

// The reference CNN (docs/architecture.md): three conv3x3(pad 1)-ReLU-maxpool2 stages with 32, 64, 128
// channels, flatten, linear(128 * (image_size/8)^2 -> 256)-ReLU, linear(256 -> num_classes), as one
// Sequential (names 0.weight ... 12.bias). image_size must be a multiple of 8.
nn::ModuleHolder<nn::Sequential> baseline_cnn(int64_t num_classes = 200, int64_t in_channels = 3,
                                              int64_t image_size = 64);

// ResNet-18 for small images: torchvision's resnet18 with a 3x3 stride-1 stem and no initial max-pool
// (names conv1, bn1, layer1.0.conv1 ..., fc). Convolutions are initialised like torchvision
// (kaiming_normal, fan_out, relu gain); batch norms to weight 1, bias 0; fc as Linear.
nn::ModuleHolder<nn::Module> resnet18_small(int64_t num_classes = 200, int64_t in_channels = 3);

}  // namespace dyad::models

DYAD_PUBLIC_END
