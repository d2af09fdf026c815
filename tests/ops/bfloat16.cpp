// bfloat16 compute on every kernel set. Each case runs an op forward and backward twice: on bfloat16
// operands, and in float32 on the same values widened (exact). The bfloat16 kernels promise "float
// arithmetic on the widened operands, each result rounded once", so on a CPU set the bfloat16 run equals
// the float32 run of the same set rounded to bfloat16, bit for bit: outputs, bfloat16 gradients, and the
// float32 gradients of float32 operands (batch norm's parameters, float32 masters behind bfloat16 copies).
// The exceptions are backward passes that read a rounded saved value or chain several kernels (exp,
// sigmoid and tanh use their rounded output, div's divisor gradient is three kernels): they are one
// bfloat16 step per rounding from the float32 values, and their rows say so.
// The naive set is checked the same way in dyad_tests. On the GPU the float arithmetic is cuDNN's, cuBLAS's
// and dyad's own in another order, so the bfloat16 run is compared with naive's within tol::bf16 (one
// bfloat16 rounding step on top of the float32 row). Every case runs on odd sizes, NCHW and channels_last
// where the op has both. Then the layers (float32 weights used through bfloat16 copies), a short training
// run on bfloat16 activations, and the errors.
#include "support/catch.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"

using namespace dyad;

namespace {

// An operand: `value` holds float32 values; activations run as bfloat16 (rounded first, so both runs see
// the same values), parameters stay float32 in both runs.
struct Operand {
    Tensor value;
    bool bf16 = true;
};

// y = f(operands) and the gradients of sum(y * w) with respect to every operand, w given in float32.
struct Run {
    Tensor y;
    std::vector<Tensor> grads;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// The operands on `device` for the bfloat16 run (widened: false) or for the float32 one (widened: true).
std::vector<Tensor> leaves(const std::vector<Operand>& ops, Device device, bool widened, MemoryFormat f) {
    std::vector<Tensor> out;
    for (const Operand& o : ops) {
        Tensor v = o.bf16 ? o.value.to(DType::bfloat16) : o.value;
        if (widened) v = v.to(DType::float32);
        if (v.dim() == 4) v = v.contiguous(f);
        out.push_back(v.to(device).detach().requires_grad_());
    }
    return out;
}

Run run(const Fn& f, const std::vector<Operand>& ops, const Tensor& w, Device device, bool widened, MemoryFormat fmt,
        uint64_t seed) {
    std::vector<Tensor> in = leaves(ops, device, widened, fmt);
    manual_seed(seed);  // dropout draws its mask from it
    Tensor y = f(in);
    Tensor wd = w.to(device).to(y.dtype());
    if (y.dim() == 4) wd = wd.contiguous(y.memory_format());
    sum(y.to(DType::float32) * wd.to(DType::float32)).backward();
    Run r{y.detach(), {}};
    for (const Tensor& t : in) r.grads.push_back(t.grad().defined() ? t.grad() : Tensor());
    return r;
}

// The float32 run's results as the bfloat16 run should hold them: the output and the bfloat16 operands'
// gradients rounded once.
Run rounded(const Run& r, const std::vector<Operand>& ops, DType out_dtype) {
    Run out{r.y.to(out_dtype), {}};
    for (size_t i = 0; i < ops.size(); i++)
        out.grads.push_back(r.grads[i].defined() && ops[i].bf16 ? r.grads[i].to(DType::bfloat16) : r.grads[i]);
    return out;
}

void require_same(const Run& expected, const Run& actual, test::Tolerance t) {
    {
        INFO("output");
        test::require_close(expected.y, actual.y, t);
    }
    REQUIRE(expected.grads.size() == actual.grads.size());
    for (size_t i = 0; i < expected.grads.size(); i++) {
        INFO("gradient of operand " << i);
        REQUIRE(expected.grads[i].defined() == actual.grads[i].defined());
        if (expected.grads[i].defined()) test::require_close(expected.grads[i], actual.grads[i], t);
    }
}

struct Case {
    std::string name;
    Fn f;
    std::vector<Operand> ops;
    Shape out_shape;
    bool has_layouts = false;  // 4-D operands run NCHW and channels_last
    DType out_dtype = DType::bfloat16;
    // On the GPU: the float32 tolerance of the op (its own row), before the bfloat16 step.
    std::function<test::Tolerance(const test::KernelSet&)> gpu_tol;
    // On a CPU set, against the float32 run rounded: exact unless the op's backward rounds in between.
    test::Tolerance cpu_tol = {};
};

Operand act(const Shape& s, uint64_t seed, double scale = 1, double shift = 0) {
    NoGradGuard ng;
    return {test::random_tensor(s, seed) * scale + shift, true};
}
Operand param(const Shape& s, uint64_t seed) { return {test::random_tensor(s, seed), false}; }

std::vector<Case> cases() {
    using test::KernelSet;
    namespace tol = test::tol;
    const Shape x4{3, 5, 7, 9};
    std::vector<Case> c;
    c.push_back({"relu",
                 [](const std::vector<Tensor>& t) { return relu(t[0]); },
                 {act(x4, 1)},
                 x4,
                 true,
                 DType::bfloat16,
                 tol::exact});
    for (auto [name, fn] : std::vector<std::pair<const char*, Tensor (*)(const Tensor&, const Tensor&)>>{
             {"add", [](const Tensor&a, const Tensor&b) { return a + b; }},
             {"sub", [](const Tensor&a, const Tensor&b) { return a - b; }},
             {"mul", [](const Tensor&a, const Tensor&b) { return a * b; }},
             {"div", [](const Tensor&a, const Tensor&b) { return a / b; }}})
        c.push_back(
            {name,
             [fn = fn](const std::vector<Tensor>& t) { return fn(t[0], t[1]); },
             // Divisors away from 0: |b| in [1, 3].
             {act(x4, 2),
              std::string(name) == "div" ? Operand{abs(test::random_tensor(x4, 3)) * 0.5 + 1.0, true} : act(x4, 3)},
             x4,
             true,
             DType::bfloat16,
             tol::arith,
             // div's divisor gradient, -(dy / b) * y: three roundings of ~2^-9 each in the bfloat16 run.
             std::string(name) == "div" ? test::Tolerance{3.0 / 256, 1e-6} : test::Tolerance{}});
    // A broadcast operand: its gradient is a sum over the broadcast dims (one kernel, rounded once).
    c.push_back({"add broadcast",
                 [](const std::vector<Tensor>& t) { return t[0] + t[1]; },
                 {act({37, 13}, 4), act({13}, 5)},
                 {37, 13},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::sum(ks, 37); }});
    // Scalar ops: one kernel each way.
    c.push_back({"mul_scalar and add_scalar",
                 [](const std::vector<Tensor>& t) { return t[0] * 0.3; },
                 {act({11, 17}, 6)},
                 {11, 17},
                 false,
                 DType::bfloat16,
                 tol::arith});
    // exp, sigmoid and tanh: the backward reads the rounded output (2^-9 relative), and sigmoid's y (1 - y)
    // and tanh's 1 - y^2 turn that into an absolute 2^-9 |dy| (|dy| <= 4 here).
    for (auto [name, fn] : std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>>{
             {"exp", [](const Tensor& x) { return exp(x); }},
             {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
             {"tanh", [](const Tensor& x) { return tanh(x); }}})
        c.push_back({name,
                     [fn = fn](const std::vector<Tensor>& t) { return fn(t[0]); },
                     {act({11, 17}, 6)},
                     {11, 17},
                     false,
                     DType::bfloat16,
                     tol::libm,
                     test::Tolerance{2.0 / 256, 4.0 / 512}});
    c.push_back({"sum over (N, H, W)",
                 [](const std::vector<Tensor>& t) {
                     return sum(t[0], {0, 2, 3});
                 },
                 {act(x4, 7)},
                 {5},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::sum(ks, 189); }});
    c.push_back({"mean",
                 [](const std::vector<Tensor>& t) { return mean(t[0]); },
                 {act({9, 31}, 8)},
                 {},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::sum(ks, 279); }});
    // The GPU's two-pass reductions (bfloat16 in, float partials, bfloat16 out): two long rows split across
    // blocks, and a reduced leading dim split across blocks of columns.
    c.push_back({"sum over long rows",
                 [](const std::vector<Tensor>& t) { return sum(t[0], {1}); },
                 {act({2, 5000}, 34)},
                 {2},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::sum(ks, 5000); }});
    c.push_back({"sum over the leading dim",
                 [](const std::vector<Tensor>& t) { return sum(t[0], {0}); },
                 {act({300, 7}, 35)},
                 {7},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::sum(ks, 300); }});
    c.push_back({"max_pool2d 3x3 stride 2 pad 1",
                 [](const std::vector<Tensor>& t) { return max_pool2d(t[0], 3, 2, 1); },
                 {act(x4, 9)},
                 {3, 5, 4, 5},
                 true,
                 DType::bfloat16,
                 tol::exact});
    c.push_back({"relu_max_pool2d 2x2",
                 [](const std::vector<Tensor>& t) { return relu_max_pool2d(t[0], 2, 2, 0); },
                 {act(x4, 10)},
                 {3, 5, 3, 4},
                 true,
                 DType::bfloat16,
                 tol::exact});
    c.push_back({"avg_pool2d 3x3 stride 2 pad 1",
                 [](const std::vector<Tensor>& t) { return avg_pool2d(t[0], 3, 2, 1); },
                 {act(x4, 11)},
                 {3, 5, 4, 5},
                 true,
                 DType::bfloat16,
                 tol::avg_pool});
    c.push_back({"adaptive_avg_pool2d (1, 1)",
                 [](const std::vector<Tensor>& t) { return adaptive_avg_pool2d(t[0], 1); },
                 {act(x4, 12)},
                 {3, 5, 1, 1},
                 true,
                 DType::bfloat16,
                 tol::avg_pool});
    c.push_back({"adaptive_avg_pool2d (3, 2)",
                 [](const std::vector<Tensor>& t) {
                     return adaptive_avg_pool2d(t[0], {3, 2});
                 },
                 {act(x4, 13)},
                 {3, 5, 3, 2},
                 true,
                 DType::bfloat16,
                 tol::avg_pool});
    // Batch norm: bfloat16 x, float32 weight and bias (and statistics).
    for (const bool fused : {false, true})
        c.push_back(
            {fused ? "batch_norm2d_relu (training)" : "batch_norm2d (training)",
             [fused](const std::vector<Tensor>& t) {
                 const Tensor rm = Tensor::zeros({5}), rv = Tensor::ones({5});
                 const Tensor& x = t[0];
                 return fused ? batch_norm2d_relu(x, rm.to(x.device()), rv.to(x.device()), t[1], t[2], true, 0.1, 1e-5)
                              : batch_norm2d(x, rm.to(x.device()), rv.to(x.device()), t[1], t[2], true, 0.1, 1e-5);
             },
             {act(x4, 14, 3.0, 2.0), param({5}, 15), param({5}, 16)},  // mean 2, scale 3
             x4,
             true,
             DType::bfloat16,
             [](const KernelSet& ks) { return tol::bn_output(ks); }});
    c.push_back({"batch_norm2d (eval)",
                 [](const std::vector<Tensor>& t) {
                     const Tensor rm = Tensor::full({5}, 0.25), rv = Tensor::full({5}, 1.5);
                     return batch_norm2d(t[0], rm.to(t[0].device()), rv.to(t[0].device()), t[1], t[2], false, 0.1,
                                         1e-5);
                 },
                 {act(x4, 17), param({5}, 18), param({5}, 19)},
                 x4,
                 true,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::bn_output(ks); }});
    // Convolutions: bfloat16 x, weight and bias.
    const Shape cx{2, 6, 9, 11}, cw{7, 6, 3, 3};
    c.push_back({"conv2d 3x3 stride 2 pad 1 with bias",
                 [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 2, 1); },
                 {act(cx, 20), act(cw, 21, 1 / std::sqrt(54.0)), act({7}, 22)},
                 {2, 7, 5, 6},
                 true,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::conv(ks, 54); }});
    c.push_back({"conv2d_relu 3x3 pad 1",
                 [](const std::vector<Tensor>& t) { return conv2d_relu(t[0], t[1], t[2], 1, 1); },
                 {act(cx, 23), act(cw, 24, 1 / std::sqrt(54.0)), act({7}, 25)},
                 {2, 7, 9, 11},
                 true,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::conv(ks, 54); }});
    c.push_back({"linear with bias",
                 [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
                 {act({9, 37}, 26), act({13, 37}, 27, 1 / std::sqrt(37.0)), act({13}, 28)},
                 {9, 13},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::dot(ks, 37); }});
    c.push_back({"batched matmul",
                 [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); },
                 {act({3, 5, 19}, 29), act({3, 19, 7}, 30, 1 / std::sqrt(19.0))},
                 {3, 5, 7},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::dot(ks, 19); }});
    // A broadcast right operand: its gradient is one GEMM whose batches accumulate into a shared C.
    c.push_back({"batched matmul, shared right operand",
                 [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); },
                 {act({3, 5, 19}, 36), act({19, 7}, 37, 1 / std::sqrt(19.0))},
                 {3, 5, 7},
                 false,
                 DType::bfloat16,
                 [](const KernelSet& ks) { return tol::dot(ks, 19); }});
    c.push_back({"dropout",
                 [](const std::vector<Tensor>& t) { return dropout(t[0], 0.3, true); },
                 {act({23, 29}, 31)},
                 {23, 29},
                 false,
                 DType::bfloat16,
                 tol::arith});
    c.push_back({"max over a dim",
                 [](const std::vector<Tensor>& t) { return max(t[0], {1}); },
                 {act({13, 21}, 32)},
                 {13},
                 false,
                 DType::bfloat16,
                 tol::exact});
    // cross_entropy reads bfloat16 logits in float32; the loss is float32, the gradient rounded once.
    c.push_back({"cross_entropy on bfloat16 logits",
                 [](const std::vector<Tensor>& t) {
                     std::vector<int32_t> labels;
                     for (int32_t i = 0; i < 17; i++) labels.push_back((i * 7) % 11);
                     return cross_entropy(t[0], Tensor::from_vector(labels, {17}).to(t[0].device()));
                 },
                 {act({17, 11}, 33)},
                 {},
                 false,
                 DType::float32,
                 [](const KernelSet& ks) { return tol::softmax(ks); }});
    return c;
}

// The weight of sum(y * w): random, of y's shape (a scalar's is 1), and bfloat16 values, so the gradient
// arriving at a bfloat16 y is the same in both runs.
Tensor weight_for(const Case& k) {
    const Tensor w = k.out_shape.empty() ? Tensor::ones({}) : test::random_tensor(k.out_shape, 99);
    return w.to(DType::bfloat16).to(DType::float32);
}

// One bfloat16 rounding step on top of an op's float32 tolerance: the sets' float results differ by that
// row (the atol, doubled), and a difference across a rounding boundary becomes one bfloat16 step, 2^-7
// relative at most. Every bfloat16 kernel rounds each result once (cuDNN's convolution included: the bias
// enters its blend), so nothing else can differ; the floor of 2^-14 is for rows with no atol whose float
// results near zero differ in the last bits.
test::Tolerance bf16_step(test::Tolerance t) {
    t.rtol += 1.0 / 128;
    t.atol = std::max(t.atol * 2, 1.0 / 16384);
    t.values_only = false;
    return t;
}

}  // namespace

// naive: bfloat16 = the float32 reference on widened operands, rounded once (dyad_tests only: the naive
// set is the CPU's).
#if !DYAD_TEST_CUDA_EXE
TEST_CASE("naive bfloat16 kernels are the float32 kernels on widened operands, rounded once", "[bfloat16][naive]") {
    for (const Case& k : cases())
        for (const MemoryFormat f : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
            if (f == MemoryFormat::channels_last && !k.has_layouts) continue;
            INFO(k.name << (f == MemoryFormat::channels_last ? " channels_last" : ""));
            const Tensor w = weight_for(k);
            test::naive_reference([&] {
                const Run wide = run(k.f, k.ops, w, Device::cpu(), true, f, 7);
                const Run half = run(k.f, k.ops, w, Device::cpu(), false, f, 7);
                REQUIRE(half.y.dtype() == k.out_dtype);
                if (f == MemoryFormat::channels_last) REQUIRE(half.y.memory_format() == MemoryFormat::channels_last);
                require_same(rounded(wide, k.ops, k.out_dtype), half, k.cpu_tol);
                return 0;
            });
        }
}
#endif

DYAD_KERNEL_TEST("bfloat16 ops equal the float32 ops on widened operands, rounded once", "[bfloat16]") {
    for (const Case& k : cases())
        for (const MemoryFormat f : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
            if (f == MemoryFormat::channels_last && !k.has_layouts) continue;
            INFO(k.name << (f == MemoryFormat::channels_last ? " channels_last" : ""));
            const Tensor w = weight_for(k);
            const Run half = run(k.f, k.ops, w, ks.device, false, f, 7);
            REQUIRE(half.y.device() == ks.device);
            REQUIRE(half.y.dtype() == k.out_dtype);
            if (ks.is_cuda()) {
                // Against naive's bfloat16 run.
                const Run ref = test::naive_reference([&] { return run(k.f, k.ops, w, Device::cpu(), false, f, 7); });
                require_same(ref, half, bf16_step(k.gpu_tol(ks)));
            } else {
                const Run wide = run(k.f, k.ops, w, ks.device, true, f, 7);
                require_same(rounded(wide, k.ops, k.out_dtype), half, k.cpu_tol);
            }
        }
}

// The layers: float32 weights, bfloat16 input. Conv2d and Linear compute with bfloat16 copies of their
// weights and pass the gradient back to the float32 weights (the masters) rounded once; batch norm
// computes with its float32 parameters. Each equals the same layer in float32 with the weights the bfloat16
// run used (the masters rounded, for Conv2d and Linear) on the widened input.
DYAD_KERNEL_TEST("Conv2d, Linear and BatchNorm2d on bfloat16 input train float32 weights", "[bfloat16][nn]") {
    struct LayerCase {
        std::string name;
        std::function<nn::ModulePtr()> make;
        Shape x, y;
        bool copies_weights;
    };
    const std::vector<LayerCase> layers = {
        {"Conv2d", [] { return std::make_shared<nn::Conv2d>(3, 8, 3, 2, 1); }, {5, 3, 9, 11}, {5, 8, 5, 6}, true},
        {"Linear", [] { return std::make_shared<nn::Linear>(37, 13); }, {9, 37}, {9, 13}, true},
        {"BatchNorm2d", [] { return std::make_shared<nn::BatchNorm2d>(5); }, {4, 5, 7, 9}, {4, 5, 7, 9}, false}};
    for (const LayerCase& lc : layers) {
        INFO(lc.name);
        manual_seed(3);
        const nn::ModulePtr half = lc.make(), wide = lc.make();
        // The float32 twin holds the values the bfloat16 run computes with.
        {
            NoGradGuard ng;
            const auto hp = half->named_parameters(), wp = wide->named_parameters();
            for (size_t i = 0; i < hp.size(); i++)
                Tensor(wp[i].second)
                    .copy_(lc.copies_weights ? hp[i].second.to(DType::bfloat16).to(DType::float32) : hp[i].second);
        }
        half->to(ks.device);
        wide->to(ks.device);
        const Tensor x = (test::random_tensor(lc.x, 4) * 2.0 + 0.5).to(DType::bfloat16).to(ks.device);
        const Tensor w = test::random_tensor(lc.y, 5).to(DType::bfloat16).to(DType::float32).to(ks.device);
        const Tensor yh = (*half)(x), yw = (*wide)(x.to(DType::float32));
        REQUIRE(yh.dtype() == DType::bfloat16);
        sum(yh.to(DType::float32) * w).backward();
        sum(yw * w).backward();
        const auto hp = half->named_parameters(), wp = wide->named_parameters();
        const test::Tolerance t = ks.is_cuda() ? bf16_step(test::tol::conv(ks, 45 * 37)) : test::Tolerance{};
        test::require_close(yw.to(DType::bfloat16), yh, t);
        for (size_t i = 0; i < hp.size(); i++) {
            INFO(hp[i].first);
            REQUIRE(hp[i].second.dtype() == DType::float32);
            REQUIRE(hp[i].second.grad().dtype() == DType::float32);
            const Tensor& g = wp[i].second.grad();
            test::require_close(lc.copies_weights ? g.to(DType::bfloat16).to(DType::float32) : g, hp[i].second.grad(),
                                ks.is_cuda() ? bf16_step(test::tol::conv(ks, 45 * 37)) : test::Tolerance{});
        }
    }
}

// A small network learns on bfloat16 activations: 40 SGD steps on one fixed batch (memorising random
// labels) bring the loss down as the float32 run does, and the two stay within a few percent of each other.
DYAD_KERNEL_TEST("a CNN trains on bfloat16 activations like the float32 one", "[bfloat16][nn]") {
    auto train = [&](bool bf16) {
        manual_seed(11);
        auto net = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
            std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(8),
            std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
            std::make_shared<nn::Linear>(8 * 4 * 4, 5)});
        net->to(ks.device);
        optim::SgdOptions so;
        so.lr = 0.05;
        so.momentum = 0.9;
        optim::Sgd sgd(net->named_parameters(), so);
        const Tensor x = test::random_tensor({16, 3, 8, 8}, 12).to(ks.device);
        std::vector<int32_t> labels;
        for (int32_t i = 0; i < 16; i++) labels.push_back((i * 3) % 5);
        const Tensor y = Tensor::from_vector(labels, {16}).to(ks.device);
        std::vector<double> losses;
        for (int step = 0; step < 40; step++) {
            sgd.zero_grad();
            const Tensor loss = cross_entropy((*net)(bf16 ? x.to(DType::bfloat16) : x), y);
            REQUIRE(loss.dtype() == DType::float32);
            loss.backward();
            sgd.step();
            losses.push_back(loss.item());
        }
        for (const auto& [name, p] : net->named_parameters()) REQUIRE(p.dtype() == DType::float32);
        return losses;
    };
    const std::vector<double> f32 = train(false), b16 = train(true);
    INFO("float32 losses " << f32.front() << " -> " << f32.back() << ", bfloat16 " << b16.front() << " -> "
                           << b16.back());
    CHECK(f32.back() < 0.25 * f32.front());
    CHECK(b16.back() < 0.25 * b16.front());
    CHECK(std::abs(b16.front() - f32.front()) < 0.02 * f32.front());  // the same model at step 0
    CHECK(std::abs(b16.back() - f32.back()) < 0.1 * f32.front());
}

// The two bundled models run end to end on bfloat16 activations (every layer they use has bfloat16 kernels,
// batch norm + ReLU fused in the ResNet): a float32 loss within 2% of the float32 model's at the same
// weights, and float32 gradients for every parameter, finite and not all zero.
DYAD_KERNEL_TEST("the baseline CNN and the ResNet-18 run on bfloat16 activations", "[bfloat16][nn]") {
    for (const bool resnet : {false, true}) {
        INFO((resnet ? "resnet18_small" : "baseline_cnn"));
        manual_seed(21);
        const nn::ModulePtr model =
            resnet ? nn::ModulePtr(models::resnet18_small(10, 3)) : nn::ModulePtr(models::baseline_cnn(10, 3, 16));
        model->to(ks.device);
        const Tensor x = test::random_tensor({4, 3, 16, 16}, 22).to(ks.device);
        const Tensor y = Tensor::from_vector(std::vector<int32_t>{1, 7, 3, 3}, {4}).to(ks.device);
        const double f32 = [&] {
            NoGradGuard ng;
            return cross_entropy((*model)(x), y).item();
        }();
        model->zero_grad();
        const Tensor loss = cross_entropy((*model)(x.to(DType::bfloat16)), y);
        REQUIRE(loss.dtype() == DType::float32);
        CHECK(std::abs(loss.item() - f32) <= 0.02 * f32);
        loss.backward();
        for (const auto& [name, p] : model->named_parameters()) {
            INFO(name);
            REQUIRE(p.grad().defined());
            REQUIRE(p.grad().dtype() == DType::float32);
            REQUIRE(min(isfinite(p.grad()).to(DType::float32)).item() == 1.0);
        }
        CHECK(sum(abs(model->named_parameters().front().second.grad())).item() > 0);
    }
}

#if !DYAD_TEST_CUDA_EXE
TEST_CASE("bfloat16 errors name the problem", "[bfloat16][errors]") {
    const Tensor x = test::random_tensor({2, 3, 4, 4}, 1).to(DType::bfloat16);
    // Batch norm's parameters are float32 for a bfloat16 x.
    const Tensor p16 = Tensor::ones({3}, DType::bfloat16);
    REQUIRE_THROWS_WITH(batch_norm2d(x, Tensor(), Tensor(), p16, Tensor(), true),
                        Catch::Contains("weight must be float32 for a bfloat16 x (2, 3, 4, 4), got bfloat16"));
    // Operands of one op agree: a float32 weight for a bfloat16 x is an error at the op (the layers convert).
    REQUIRE_THROWS_WITH(conv2d(x, test::random_tensor({4, 3, 3, 3}, 2)), Catch::Contains("dtypes differ"));
    // An op with no bfloat16 kernels says so and names the way out.
    REQUIRE_THROWS_WITH(softmax(x, 1), Catch::Contains("bfloat16 is not supported") &&
                                           Catch::Contains("compute it in float32 (x.to(DType::float32))"));
}
#endif
