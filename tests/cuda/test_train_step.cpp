// Whole training steps on the GPU against the CPU from the same weights and batches: the baseline CNN
// (conv, relu, max-pool, linear, cross-entropy, SGD with momentum and weight decay) and the small ResNet-18
// (adds batch norm in training mode, residual sums and global average pooling).
//
// Tolerances (docs/testing.md): both devices compute in float32 and differ by summation order, giving
// relative errors near 1e-6 per op. relu and max-pool are discontinuous: a pre-activation within rounding
// of zero, or a near-tie in a pooling window, can fall on the other side on the other device and move a
// single term of a gradient sum. One such term is small against the whole tensor, so gradients and
// parameter updates are compared by relative L2 error (bound 1e-3), the loss by relative error (1e-4).
#include "support/catch.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;

namespace {

// ||a - b|| / ||b|| over all elements (0 when both are zero).
double rel_l2(const Tensor& a, const Tensor& b) {
    const std::vector<double> va = test::values(a), vb = test::values(b);
    REQUIRE(va.size() == vb.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < va.size(); i++) {
        num += (va[i] - vb[i]) * (va[i] - vb[i]);
        den += vb[i] * vb[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct Trace {
    std::vector<double> losses;
    nn::NamedTensors first_grads;  // gradients of the first step
    nn::NamedTensors params_before, params_after;
};

// `steps` SGD steps of `model` on `device` over fixed batches; gradients and parameters come back on the CPU.
Trace run(const std::shared_ptr<nn::Module>& model, Device device, const std::vector<Tensor>& xs,
          const std::vector<Tensor>& ys) {
    model->to(device);
    model->train();
    Trace t;
    for (const auto& [name, p] : model->named_parameters())
        t.params_before.push_back({name, p.detach().to(Device::cpu())});
    optim::Sgd opt(model->named_parameters(), optim::SgdOptions{0.01, 0.9, 0.0, 5e-4, false, false});
    for (size_t s = 0; s < xs.size(); s++) {
        opt.zero_grad();
        const Tensor loss = cross_entropy((*model)(xs[s].to(device)), ys[s].to(device));
        loss.backward();
        t.losses.push_back(loss.item());
        if (s == 0)
            for (const auto& [name, p] : model->named_parameters())
                t.first_grads.push_back({name, p.grad().to(Device::cpu())});
        opt.step();
    }
    for (const auto& [name, p] : model->named_parameters())
        t.params_after.push_back({name, p.detach().to(Device::cpu())});
    return t;
}

void compare(const Trace& gpu, const Trace& ref) {
    REQUIRE(gpu.losses.size() == ref.losses.size());
    for (size_t s = 0; s < ref.losses.size(); s++) {
        INFO("step " << s << ": gpu loss " << gpu.losses[s] << ", cpu loss " << ref.losses[s]);
        REQUIRE(std::isfinite(gpu.losses[s]));
        REQUIRE(std::abs(gpu.losses[s] - ref.losses[s]) <= 1e-4 * std::abs(ref.losses[s]));
    }
    REQUIRE(gpu.first_grads.size() == ref.first_grads.size());
    for (size_t i = 0; i < ref.first_grads.size(); i++) {
        INFO("gradient of " << ref.first_grads[i].first);
        REQUIRE(gpu.first_grads[i].first == ref.first_grads[i].first);
        REQUIRE(rel_l2(gpu.first_grads[i].second, ref.first_grads[i].second) <= 1e-3);
    }
    for (size_t i = 0; i < ref.params_after.size(); i++) {
        INFO("update of " << ref.params_after[i].first);
        // Same starting point on both devices; the updates (after minus before) must agree.
        REQUIRE(test::values(gpu.params_before[i].second) == test::values(ref.params_before[i].second));
        const Tensor du_gpu = gpu.params_after[i].second - gpu.params_before[i].second;
        const Tensor du_ref = ref.params_after[i].second - ref.params_before[i].second;
        REQUIRE(rel_l2(du_gpu, du_ref) <= 1e-3);
    }
}

}  // namespace

TEST_CASE("baseline CNN: three training steps on the GPU match the CPU", "[cuda][train]") {
    manual_seed(1);
    std::vector<Tensor> xs, ys;
    for (int s = 0; s < 3; s++) {
        xs.push_back(Tensor::randn({8, 3, 64, 64}));
        ys.push_back(Tensor::from_vector(std::vector<int32_t>{3, 199, 0, 57, 57, 120, 8, 64}, {8}));
    }
    manual_seed(7);
    const auto on_gpu = models::baseline_cnn(200, 3, 64);
    manual_seed(7);
    const auto on_cpu = models::baseline_cnn(200, 3, 64);
    const Trace ref = run(on_cpu, Device::cpu(), xs, ys);
    const Trace gpu = run(on_gpu, Device::cuda(), xs, ys);
    compare(gpu, ref);
    // The loss moved: the steps did something on both devices.
    REQUIRE(ref.losses.back() != ref.losses.front());
}

TEST_CASE("small ResNet-18 with batch norm: two training steps on the GPU match the CPU", "[cuda][train]") {
    manual_seed(2);
    std::vector<Tensor> xs, ys;
    for (int s = 0; s < 2; s++) {
        xs.push_back(Tensor::randn({4, 3, 32, 32}));
        ys.push_back(Tensor::from_vector(std::vector<int32_t>{1, 9, 4, 4}, {4}));
    }
    manual_seed(11);
    const auto on_gpu = models::resnet18_small(10, 3);
    manual_seed(11);
    const auto on_cpu = models::resnet18_small(10, 3);
    const Trace ref = run(on_cpu, Device::cpu(), xs, ys);
    const Trace gpu = run(on_gpu, Device::cuda(), xs, ys);
    compare(gpu, ref);
    // Batch-norm running statistics and the batch counter moved identically (to rounding).
    const nn::NamedTensors bg = on_gpu->named_buffers(), bc = on_cpu->named_buffers();
    REQUIRE(bg.size() == bc.size());
    for (size_t i = 0; i < bc.size(); i++) {
        INFO("buffer " << bc[i].first);
        if (bc[i].second.dtype() == DType::int32)
            REQUIRE(test::values(bg[i].second) == test::values(bc[i].second));
        else
            REQUIRE(rel_l2(bg[i].second, bc[i].second) <= 1e-4);
    }
}

TEST_CASE("a training step waits for the GPU only when the loss is read", "[cuda][train]") {
    // No hidden synchronisation: forward, backward and the optimizer step only queue work; item() waits once.
    manual_seed(3);
    const auto model = models::baseline_cnn(200, 3, 64);
    model->to(Device::cuda());
    optim::Sgd opt(model->named_parameters(), optim::SgdOptions{0.01, 0.9, 0.0, 5e-4, false, false});
    const Tensor x = Tensor::randn({16, 3, 64, 64}).to(Device::cuda());
    const Tensor y = Tensor::zeros({16}, DType::int32, Device::cuda());
    auto step = [&] {
        opt.zero_grad();
        Tensor loss = cross_entropy((*model)(x), y);
        loss.backward();
        opt.step();
        return loss;
    };
    step().item();  // warm-up: handles, algorithm search, first allocations
    const size_t before = cuda::host_waits();
    Tensor loss;
    for (int i = 0; i < 5; i++) loss = step();
    REQUIRE(cuda::host_waits() == before);
    REQUIRE(std::isfinite(loss.item()));
    REQUIRE(cuda::host_waits() == before + 1);
}

TEST_CASE("a checkpoint written from the GPU resumes on the CPU and back, exactly", "[cuda][train]") {
    const std::string path = (std::filesystem::temp_directory_path() / "dyad_cuda_checkpoint.safetensors").string();
    manual_seed(5);
    const Tensor x = Tensor::randn({4, 3, 32, 32});
    const Tensor y = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3}, {4});
    const optim::SgdOptions so{0.05, 0.9, 0.0, 1e-4, true, false};
    auto step = [&](nn::Module& m, optim::Sgd& opt, Device d) {
        opt.zero_grad();
        Tensor loss = cross_entropy(m(x.to(d)), y.to(d));
        loss.backward();
        opt.step();
    };
    // Two steps on the GPU, saved with the optimizer's momentum.
    manual_seed(9);
    const auto gpu_model = models::baseline_cnn(10, 3, 32);
    gpu_model->to(Device::cuda());
    optim::Sgd gpu_opt(gpu_model->named_parameters(), so);
    step(*gpu_model, gpu_opt, Device::cuda());
    step(*gpu_model, gpu_opt, Device::cuda());
    io::save(path, *gpu_model, &gpu_opt, {{"epoch", "2"}});
    // Loaded into a CPU model: the same bits.
    manual_seed(123);
    const auto cpu_model = models::baseline_cnn(10, 3, 32);
    optim::Sgd cpu_opt(cpu_model->named_parameters(), so);
    const io::Metadata meta = io::load(path, *cpu_model, &cpu_opt);
    REQUIRE(meta.at("epoch") == "2");
    REQUIRE(cpu_opt.step_count() == 2);
    const nn::NamedTensors pg = gpu_model->state_dict(), pc = cpu_model->state_dict();
    REQUIRE(pg.size() == pc.size());
    for (size_t i = 0; i < pc.size(); i++) {
        INFO(pc[i].first);
        test::require_identical(pg[i].second.to(Device::cpu()), pc[i].second);
    }
    // And back onto the GPU into a fresh model: one more step there equals one more step on the first
    // (bit for bit with cuDNN's deterministic algorithms; the default ones may reorder sums run to run).
    set_deterministic(true);
    manual_seed(321);
    const auto gpu2 = models::baseline_cnn(10, 3, 32);
    gpu2->to(Device::cuda());
    optim::Sgd gpu2_opt(gpu2->named_parameters(), so);
    io::load(path, *gpu2, &gpu2_opt);
    step(*gpu_model, gpu_opt, Device::cuda());
    step(*gpu2, gpu2_opt, Device::cuda());
    const nn::NamedTensors a = gpu_model->named_parameters(), b = gpu2->named_parameters();
    for (size_t i = 0; i < a.size(); i++) {
        INFO(a[i].first);
        test::require_identical(a[i].second.to(Device::cpu()), b[i].second.to(Device::cpu()));
    }
    set_deterministic(false);
    std::filesystem::remove(path);
}
