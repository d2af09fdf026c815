// GPU ranks over NCCL: ctest runs this alone (one rank, one GPU) and under `mpirun -np 2` (two GPUs). It
// exits 77 (skipped) without NCCL in the build, without a GPU, or with fewer GPUs than ranks.
//   - all_reduce (sum, mean, max, min) and broadcast of GPU tensors give the exact values every rank knows;
//   - a collective inside a CapturedStep is captured and replayed (no fallback), with the eager result;
//   - DataParallel on GPU parameters: the ranks' parameters after 3 SGD steps equal one process adding the
//     shards' gradients in rank order (bit for bit with 1 or 2 ranks), and are identical on every rank.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s: rank %d: %s\n", ok ? "ok" : "FAILED", dist::rank(), what.c_str());
    if (!ok) failures++;
}

std::vector<float> host(const Tensor& t) { return t.to(Device::cpu()).contiguous().to_vector<float>(); }

void collectives(Device gpu) {
    const int n = dist::world_size(), r = dist::rank();
    std::vector<float> base(1001);
    for (size_t i = 0; i < base.size(); i++) base[i] = float(int(i * 7919 % 2048) - 1000);
    auto mine = [&] {
        std::vector<float> v(base);
        for (float& e : v) e *= float(r + 1);
        return Tensor::from_vector(v, {7, 11, 13}).to(gpu);
    };
    const float tri = float(n * (n + 1) / 2);
    Tensor t = mine();
    dist::all_reduce(t);
    bool ok = true;
    const auto got = host(t);
    for (size_t i = 0; i < base.size(); i++) ok = ok && got[i] == base[i] * tri;
    check(ok, "all_reduce sum of a GPU tensor");
    Tensor hi = mine(), lo = mine();
    dist::all_reduce(hi, dist::ReduceOp::max);
    dist::all_reduce(lo, dist::ReduceOp::min);
    const auto h = host(hi), l = host(lo);
    ok = true;
    for (size_t i = 0; i < base.size(); i++)
        ok = ok && h[i] == (base[i] >= 0 ? base[i] * float(n) : base[i]) &&
             l[i] == (base[i] >= 0 ? base[i] : base[i] * float(n));
    check(ok, "all_reduce max and min of a GPU tensor");
    Tensor m = Tensor::full({5}, double(r + 1), DType::float32, gpu);
    dist::all_reduce(m, dist::ReduceOp::mean);
    ok = true;
    for (float v : host(m)) ok = ok && v == float(n + 1) / 2;
    check(ok, "all_reduce mean of a GPU tensor");
    Tensor b = Tensor::full({4, 3}, double(r * 10 + 1), DType::float32, gpu);
    dist::broadcast(b, n - 1);
    ok = true;
    for (float v : host(b)) ok = ok && v == float((n - 1) * 10 + 1);
    check(ok, "broadcast of a GPU tensor from the last rank");
}

void captured(Device gpu) {
    const int n = dist::world_size();
    Tensor x = Tensor::ones({64}, DType::float32, gpu);
    CapturedStep step([](const std::vector<Tensor>& in) {
        Tensor y = mul(in[0], 2.0);
        dist::all_reduce(y);
        return std::vector<Tensor>{y};
    });
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        const Tensor y = step({x})[0];
        for (float v : host(y)) ok = ok && v == 2.0f * float(n);
    }
    check(ok && step.fallback_reason().empty(),
          "an all_reduce inside a CapturedStep is captured and replayed" +
              (step.fallback_reason().empty() ? std::string() : ": fell back: " + step.fallback_reason()));
    check(step.replays() > 0, "the captured step was replayed");
}

void data_parallel(Device gpu) {
    const int n = dist::world_size(), r = dist::rank();
    constexpr int64_t kShard = 4;
    auto batch = [&](int step) {
        manual_seed(uint64_t(50 + step));
        Tensor x = Tensor::randn({n * kShard, 1, 8, 8});
        std::vector<int32_t> y;
        for (int64_t i = 0; i < n * kShard; i++) y.push_back(int32_t((i + step) % 5));
        return std::make_pair(x, Tensor::from_vector(y, {n * kShard}));
    };
    manual_seed(uint64_t(9 + r));
    auto model = models::baseline_cnn(5, 1, 8);
    model->to(gpu);
    dist::DataParallel dp(*model);
    optim::Sgd sgd(model->parameters(), {0.05, 0.9});
    manual_seed(9);
    auto ref = models::baseline_cnn(5, 1, 8);  // rank 0's initial weights, on the same GPU kernels
    ref->to(gpu);
    optim::Sgd ref_sgd(ref->parameters(), {0.05, 0.9});
    for (int step = 0; step < 3; step++) {
        const auto [x, y] = batch(step);
        sgd.zero_grad();
        cross_entropy(dp(x.slice(0, r * kShard, (r + 1) * kShard).contiguous().to(gpu)),
                      y.slice(0, r * kShard, (r + 1) * kShard).contiguous().to(gpu))
            .backward();
        sgd.step();
        // The reference: each shard's gradients in turn, summed in rank order, times 1 / n.
        std::vector<std::vector<float>> sum;
        const auto params = ref->parameters();
        for (int s = 0; s < n; s++) {
            ref_sgd.zero_grad();
            cross_entropy((*ref)(x.slice(0, s * kShard, (s + 1) * kShard).contiguous().to(gpu)),
                          y.slice(0, s * kShard, (s + 1) * kShard).contiguous().to(gpu))
                .backward();
            for (size_t i = 0; i < params.size(); i++) {
                const auto g = host(params[i].grad());
                if (s == 0) {
                    sum.push_back(g);
                } else {
                    for (size_t e = 0; e < g.size(); e++) sum[i][e] += g[e];
                }
            }
        }
        const float scale = float(1.0 / n);
        for (size_t i = 0; i < params.size(); i++) {
            for (float& v : sum[i]) v *= scale;
            const_cast<Tensor&>(params[i]).set_grad(Tensor::from_vector(sum[i], params[i].shape()).to(gpu));
        }
        ref_sgd.step();
    }
    bool same = true, everywhere = true;
    const auto mine = model->parameters(), want = ref->parameters();
    for (size_t i = 0; i < mine.size(); i++) {
        const auto a = host(mine[i]), b = host(want[i]);
        same = same && (n > 2 || a == b);
        Tensor root = mine[i].clone();
        dist::broadcast(root, 0);
        everywhere = everywhere && host(root) == a;
    }
    check(same, "DataParallel on the GPU equals one process adding the shards' gradients (bit for bit)");
    check(everywhere, "the ranks' GPU parameters are identical");
}

}  // namespace

int main() {
    if (!dist::nccl_built()) {
        std::printf("this build has no NCCL: skipped\n");
        return 77;
    }
    if (!cuda_available()) {
        std::printf("no GPU: skipped\n");
        return 77;
    }
    dist::init();
    if (cuda_device_count() < dist::local_size()) {
        std::printf("%d GPU(s) for %d ranks on this machine (NCCL needs one GPU per rank): skipped\n",
                    cuda_device_count(), dist::local_size());
        dist::finalize();
        return 77;
    }
    const Device gpu = Device::cuda(dist::local_rank());
    try {
        collectives(gpu);
        captured(gpu);
        data_parallel(gpu);
    } catch (const std::exception& e) {
        dist::abort(1, std::string("dist_nccl: ") + e.what());
    }
    const double worst = dist::all_reduce(double(failures), dist::ReduceOp::max);
    dist::finalize();
    return worst > 0 ? 1 : 0;
}
