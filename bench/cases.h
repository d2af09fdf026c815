// The shapes and settings the benchmarks measure, in one place, so that other measurements of the same work
// can be checked against them: the acceleration study of the example program (dyad-tinyimagenet study)
// measures SGEMM and the training step as bench_gemm and bench_train_step do, and a test
// (tests/examples/test_study.cpp) checks that its points and these cases compute the same thing (shapes,
// FLOP counts, models, optimizer). dyad's public API only; no Google Benchmark.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "dyad/dyad.h"

namespace dyad::bench {

// ---------------------------------------------------------------- GEMM (bench_gemm)
struct GemmCase {
    const char* name;
    int64_t m, n, k;
    bool trans_a, trans_b;
};

// One line each: FLOP per call and where the operands live (L2 512 KiB, L3 32 MiB on the reference Zen 3).
inline const GemmCase kGemmCases[] = {
    // 2*256^3 = 34 MFLOP on 768 KiB of operands: L2/L3-resident, short enough that packing shows.
    {"square256", 256, 256, 256, false, false},
    // 268 MFLOP on 3 MiB: L3-resident.
    {"square512", 512, 512, 512, false, false},
    // 2.1 GFLOP on 12 MiB: L3-resident; the steady state of the blocked kernel.
    {"square1024", 1024, 1024, 1024, false, false},
    // 17 GFLOP on 48 MiB: larger than L3, so the packed blocks must carry the reuse.
    {"square2048", 2048, 2048, 2048, false, false},
    // fc1 forward, y = x w^T: x (64, 8192), w (256, 8192); 268 MFLOP, 10 MiB of operands, 32 k blocks.
    {"fc1_fwd", 64, 256, 8192, false, true},
    // fc1 backward data, dx = dy w: dy (64, 256), w (256, 8192); 268 MFLOP, wide C (64 x 8192).
    {"fc1_bwd_data", 64, 8192, 256, false, false},
    // fc1 backward weight, dw = dy^T x: dy (64, 256), x (64, 8192); 268 MFLOP with only k = 64.
    {"fc1_bwd_weight", 256, 8192, 64, true, false},
    // fc2 forward, y = x w^T: x (64, 256), w (200, 256); 6.6 MFLOP, n = 200 is not a multiple of 16.
    {"fc2_fwd", 64, 200, 256, false, true},
    // fc2 backward data, dx = dy w: dy (64, 200), w (200, 256); 6.6 MFLOP.
    {"fc2_bwd_data", 64, 256, 200, false, false},
    // fc2 backward weight, dw = dy^T x: dy (64, 200), x (64, 256); 6.6 MFLOP.
    {"fc2_bwd_weight", 200, 256, 64, true, false},
    // conv1 as im2col, per image: w (32, 3*3*3) x cols (27, 64*64); 7.1 MFLOP, k = 27 is tiny.
    {"conv1_im2col", 32, 4096, 27, false, false},
    // conv2: w (64, 32*3*3) x cols (288, 32*32); 38 MFLOP.
    {"conv2_im2col", 64, 1024, 288, false, false},
    // conv3: w (128, 64*3*3) x cols (576, 16*16); 38 MFLOP.
    {"conv3_im2col", 128, 256, 576, false, false},
    // ResNet-18's fc forward, y = x w^T: x (256, 512), w (200, 512); 52 MFLOP, 0.9 MiB, n = 200 again.
    {"resnet_fc_fwd", 256, 200, 512, false, true},
    // ResNet-18's fc backward data, dx = dy w: dy (256, 200), w (200, 512); 52 MFLOP, k = 200.
    {"resnet_fc_bwd_data", 256, 512, 200, false, false},
    // ResNet-18's fc backward weight, dw = dy^T x: dy (256, 200), x (256, 512); 52 MFLOP, m = 200.
    {"resnet_fc_bwd_weight", 200, 512, 256, true, false},
    // ResNet-18's layer1 conv as im2col, per image: w (64, 64*3*3) x cols (576, 64*64); 302 MFLOP.
    {"resnet_l1_im2col", 64, 4096, 576, false, false},
    // layer4: w (512, 512*3*3) x cols (4608, 8*8); 302 MFLOP, 9 MiB of weights, n = 64 is short.
    {"resnet_l4_im2col", 512, 64, 4608, false, false},
};

// 4096^3 (137 GFLOP: the tiled kernel's target is 80% of cuBLAS in strict FP32), then the linear layers
// at batch 128: fc1 8192 -> 256 and fc2 256 -> 200, forward, backward data and backward weight; then
// ResNet-18's fc 512 -> 200 at batch 256, the same three GEMMs.
inline const GemmCase kGemmGpuCases[] = {
    {"square4096", 4096, 4096, 4096, false, false},
    {"fc1_fwd", 128, 256, 8192, false, true},
    {"fc1_bwd_data", 128, 8192, 256, false, false},
    {"fc1_bwd_weight", 256, 8192, 128, true, false},
    {"fc2_fwd", 128, 200, 256, false, true},
    {"fc2_bwd_data", 128, 256, 200, false, false},
    {"fc2_bwd_weight", 200, 256, 128, true, false},
    {"resnet_fc_fwd", 256, 200, 512, false, true},
    {"resnet_fc_bwd_data", 256, 512, 200, false, false},
    {"resnet_fc_bwd_weight", 200, 512, 256, true, false},
};

// FLOP of one call: 2 m n k (a multiply and an add per term).
inline double gemm_flop(const GemmCase& c) { return 2.0 * double(c.m) * double(c.n) * double(c.k); }

// ---------------------------------------------------------------- training step (bench_train_step)
// Model 0: the baseline CNN, model 1: the ResNet-18 for small images; both for 64x64 RGB images and 200
// classes (Tiny ImageNet's).
constexpr int64_t kTrainStepImage = 64, kTrainStepClasses = 200;
inline const char* train_step_model_name(int64_t model) { return model == 0 ? "baseline" : "resnet18"; }
inline std::shared_ptr<nn::Module> train_step_model(int64_t model) {
    if (model == 0) return models::baseline_cnn(kTrainStepClasses, 3, kTrainStepImage);
    return models::resnet18_small(kTrainStepClasses, 3);
}
// The optimizer of every measured step.
inline optim::SgdOptions train_step_sgd() {
    optim::SgdOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    return o;
}
// FLOP of one step of `batch` images: three passes of the forward's (forward, backward data, backward
// weights; the first layer's backward data is not needed and is counted anyway).
inline double train_step_flop(nn::Module& model, int64_t batch) {
    return 3.0 * nn::forward_flop(model, {1, 3, kTrainStepImage, kTrainStepImage}) * double(batch);
}
// Labels of a batch: i * 37 mod classes, every class met.
inline std::vector<int32_t> train_step_labels(int64_t batch) {
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; i++) labels[size_t(i)] = int32_t((i * 37) % kTrainStepClasses);
    return labels;
}

}  // namespace dyad::bench
