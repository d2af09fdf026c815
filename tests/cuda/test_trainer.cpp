// The trainer on a GPU with its training step captured in a CUDA graph: the same losses and accuracies,
// bit for bit, as the same run with --graph off, across a change of learning rate (a new capture) and a
// partial last batch (a second key).
#include "support/catch.h"

#include <cmath>
#include <filesystem>
#include <string>

#include "dyad/dyad.h"
#include "trainer.h"

using namespace dyad;
using namespace dyad::trainer;

namespace {

Report run_gpu(bool graph, const std::string& name, const std::string& precision = "fp32") {
    const std::filesystem::path out = std::filesystem::temp_directory_path() / ("dyad-cuda-trainer-" + name);
    std::filesystem::remove_all(out);
    Options o;
    o.data = "generated";
    o.devices = {"cuda"};
    o.epochs = 3;       // the cosine schedule changes the rate every epoch: a new graph per epoch
    o.batch_size = 24;  // 200 images: 8 full batches and a partial one of 8 per epoch
    o.limit_train = 200;
    o.limit_val = 40;
    o.out = out.string();
    o.quiet = true;
    o.profile = false;
    o.graph = graph;
    o.precision = precision;
    const Report r = run(o);
    std::filesystem::remove_all(out);
    return r;
}

// Deterministic cuDNN algorithms for a scope (restored even when the run throws).
struct DeterministicScope {
    bool prev = deterministic();
    DeterministicScope() { set_deterministic(true); }
    ~DeterministicScope() { set_deterministic(prev); }
};

}  // namespace

TEST_CASE("trainer: a GPU run with captured steps equals one without, bit for bit", "[cuda][capture][train]") {
    Report eager, graphed;
    {
        DeterministicScope det;
        eager = run_gpu(false, "eager");
        graphed = run_gpu(true, "graph");
    }
    // The graphed run really replayed captured steps (a fallback would make the comparison trivial).
    REQUIRE(graphed.backends.size() == 1);
    INFO("capture fallback: " << (graphed.backends[0].graph_fallback.empty() ? "none"
                                                                             : graphed.backends[0].graph_fallback));
    REQUIRE(graphed.backends[0].graph_fallback.empty());
    REQUIRE(graphed.backends[0].graph_replays > 0);
    REQUIRE(eager.backends[0].graph_replays == 0);
    REQUIRE(eager.epochs.size() == 3);
    REQUIRE(graphed.epochs.size() == eager.epochs.size());
    for (size_t i = 0; i < eager.epochs.size(); i++) {
        INFO("epoch " << i + 1);
        CHECK(graphed.epochs[i].train_loss == eager.epochs[i].train_loss);
        CHECK(graphed.epochs[i].train_acc == eager.epochs[i].train_acc);
        CHECK(graphed.epochs[i].val_loss == eager.epochs[i].val_loss);
        CHECK(graphed.epochs[i].val_top1 == eager.epochs[i].val_top1);
    }
    CHECK(eager.epochs.back().train_loss < eager.epochs.front().train_loss);
}

// --precision bf16: the network on bfloat16 activations (bfloat16 images, bfloat16 copies of the float32
// weights), captured in a CUDA graph like the float32 step. It learns as the float32 run does.
TEST_CASE("trainer: --precision bf16 trains on bfloat16 activations, captured", "[cuda][capture][train][bfloat16]") {
    const Report f32 = run_gpu(true, "fp32");
    const Report b16 = run_gpu(true, "bf16", "bf16");
    set_precision(Precision::fp32);
    REQUIRE(b16.backends.size() == 1);
    INFO("capture fallback: " << (b16.backends[0].graph_fallback.empty() ? "none" : b16.backends[0].graph_fallback));
    REQUIRE(b16.backends[0].graph_fallback.empty());
    REQUIRE(b16.backends[0].graph_replays > 0);
    REQUIRE(b16.epochs.size() == f32.epochs.size());
    for (size_t i = 0; i < b16.epochs.size(); i++) {
        INFO("epoch " << i + 1 << ": bf16 loss " << b16.epochs[i].train_loss << ", fp32 " << f32.epochs[i].train_loss);
        REQUIRE(std::isfinite(b16.epochs[i].train_loss));
        // Rounding to 8 significant bits moves a three-epoch run by a few percent, not more.
        CHECK(std::abs(b16.epochs[i].train_loss - f32.epochs[i].train_loss) <= 0.05 * f32.epochs[0].train_loss);
    }
    CHECK(b16.epochs.back().train_loss < b16.epochs.front().train_loss);
}
