// DataParallel on 1, 2 and 3 ranks (the same program as test_dist.cpp, launched by ctest alone and under
// mpirun). Every rank builds the same reference computation in its own process: the module trained on
// the whole global batch by adding the ranks' shard gradients in rank order, which is what the all-reduce
// computes. Two ranks must give exactly those bits (float addition of two operands does not depend on the
// order); three ranks may sum in another association, so they are compared within a stated tolerance,
// and with each other bit for bit.
//
// Comparisons are CHECKs, not REQUIREs, wherever a rank could fail alone: a rank that left a case early
// would call different collectives from the others (the job would end at the collective timeout).
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dist/job.h"
#include "dyad/dist.h"
#include "dyad/dyad.h"

using namespace dyad;
using test::job;

namespace {

constexpr int64_t kClasses = 5, kImage = 8, kShard = 3;

// The global batch of step `step`: the same on every rank (its own generator stream).
std::pair<Tensor, Tensor> global_batch(int step, int64_t n) {
    manual_seed(uint64_t(7000 + step));
    Tensor x = Tensor::randn({n, 1, kImage, kImage});
    std::vector<int64_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) y[size_t(i)] = (i * 7 + step) % kClasses;
    return {x, Tensor::from_vector(y, {n})};
}

// Rows [s * len, (s + 1) * len) of a batch.
std::pair<Tensor, Tensor> shard(const std::pair<Tensor, Tensor>& batch, int64_t s, int64_t len) {
    return {batch.first.slice(0, s * len, (s + 1) * len).contiguous(),
            batch.second.slice(0, s * len, (s + 1) * len).contiguous()};
}

nn::ModuleHolder<nn::Sequential> cnn(uint64_t seed) {
    manual_seed(seed);
    return models::baseline_cnn(kClasses, 1, kImage);
}

std::vector<float> flat(const std::vector<Tensor>& ts, bool grads) {
    std::vector<float> out;
    for (const Tensor& t : ts) {
        const Tensor v = grads ? t.grad() : t;
        if (!v.defined()) continue;
        const std::vector<float> e = v.to_vector<float>();
        out.insert(out.end(), e.begin(), e.end());
    }
    return out;
}

// Every rank's values equal rank 0's, bit for bit (rank 0's broadcast and compared everywhere).
bool same_on_every_rank(const std::vector<float>& mine) {
    Tensor t = Tensor::from_vector(mine, {int64_t(mine.size())});
    Tensor root = t.clone();
    dist::broadcast(root, 0);
    const double same = std::memcmp(t.raw_data(), root.raw_data(), mine.size() * sizeof(float)) == 0 ? 1.0 : 0.0;
    return dist::all_reduce(same, dist::ReduceOp::min) == 1.0;
}

// The largest |a - b| / (1 + |b|).
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); i++)
        m = std::max(m, std::fabs(double(a[i]) - b[i]) / (1.0 + std::fabs(double(b[i]))));
    return m;
}

// The gradients one process gets for shard s of a batch (loss scaled by `scale`), accumulated into the
// model's (zeroed) gradients over `micro` micro-batches of the shard.
std::vector<Tensor> shard_grads(nn::Module& model, const std::pair<Tensor, Tensor>& batch, int64_t s, int64_t len,
                                int micro = 1) {
    model.zero_grad();
    const int64_t m = len / micro;
    for (int k = 0; k < micro; k++) {
        const auto sh = shard(shard(batch, s, len), k, m);
        Tensor loss = cross_entropy(model(sh.first), sh.second);
        if (micro > 1) loss = mul(loss, 1.0 / micro);
        loss.backward();
    }
    std::vector<Tensor> g;
    for (const Tensor& p : model.parameters()) g.push_back(p.grad().clone());
    return g;
}

// sum_s grads[s] (in rank order) times 1 / n: what DataParallel's all-reduce and scaling compute.
void set_mean_grads(nn::Module& model, const std::vector<std::vector<Tensor>>& grads) {
    NoGradGuard ng;
    const auto params = model.parameters();
    const float scale = float(1.0 / double(grads.size()));
    for (size_t i = 0; i < params.size(); i++) {
        std::vector<float> acc = grads[0][i].to_vector<float>();
        for (size_t s = 1; s < grads.size(); s++) {
            const std::vector<float> g = grads[s][i].to_vector<float>();
            for (size_t e = 0; e < acc.size(); e++) acc[e] += g[e];
        }
        for (float& v : acc) v *= scale;
        const_cast<Tensor&>(params[i]).set_grad(Tensor::from_vector(acc, params[i].shape()));
    }
}

// K SGD steps with DataParallel on this rank's shard of each global batch; returns the parameters after
// each step.
std::vector<std::vector<float>> train_dp(const dist::DataParallelOptions& opt, int steps) {
    const int n = dist::world_size(), r = dist::rank();
    auto model = cnn(uint64_t(100 + r));  // different on every rank: the construction broadcasts rank 0's
    dist::DataParallel dp(*model, opt);
    optim::Sgd sgd(model->parameters(), {0.05, 0.9});
    std::vector<std::vector<float>> out;
    for (int step = 0; step < steps; step++) {
        const auto mine = shard(global_batch(step, n * kShard), r, kShard);
        sgd.zero_grad();
        Tensor loss = cross_entropy(dp(mine.first), mine.second);
        loss.backward();
        sgd.step();
        out.push_back(flat(model->parameters(), false));
    }
    return out;
}

}  // namespace

TEST_CASE("DataParallel: the ranks' steps equal one process adding the shards' gradients in rank order",
          "[dist][data_parallel]") {
    (void)job();
    const int n = dist::world_size();
    constexpr int kSteps = 3;
    const auto got = train_dp({}, kSteps);

    // The reference: rank 0's initial model; each step the shards' gradients, summed in rank order.
    auto ref = cnn(100);
    optim::Sgd sgd(ref->parameters(), {0.05, 0.9});
    // And full-batch training in one process (the mean over the global batch directly).
    auto full = cnn(100);
    optim::Sgd full_sgd(full->parameters(), {0.05, 0.9});
    for (int step = 0; step < kSteps; step++) {
        const auto batch = global_batch(step, n * kShard);
        std::vector<std::vector<Tensor>> grads;
        for (int s = 0; s < n; s++) grads.push_back(shard_grads(*ref, batch, s, kShard));
        set_mean_grads(*ref, grads);
        sgd.step();
        full_sgd.zero_grad();
        cross_entropy((*full)(batch.first), batch.second).backward();
        full_sgd.step();

        const std::vector<float> want = flat(ref->parameters(), false);
        INFO("step " << step << " of " << n << " ranks");
        CHECK(same_on_every_rank(got[size_t(step)]));
        if (n <= 2)
            CHECK(got[size_t(step)] == want);  // bit for bit
        else
            CHECK(max_rel(got[size_t(step)], want) < 1e-6);
        // Full-batch training differs only by rounding (a mean of means instead of one mean).
        CHECK(max_rel(got[size_t(step)], flat(full->parameters(), false)) < 1e-5);
    }
}

TEST_CASE("DataParallel: bucket caps of 1 KiB and 25 MiB, overlap on or off: the same bits", "[dist][data_parallel]") {
    (void)job();
    dist::DataParallelOptions small;
    small.bucket_cap_bytes = 1024;
    small.first_bucket_cap_bytes = 1024;
    dist::DataParallelOptions late;
    late.overlap = false;
    dist::DataParallelOptions small_late = small;
    small_late.overlap = false;
    const auto base = train_dp({}, 2);
    CHECK(train_dp(small, 2) == base);
    CHECK(train_dp(late, 2) == base);
    CHECK(train_dp(small_late, 2) == base);

    // The buckets: reverse parameter order, each within its cap unless one parameter alone exceeds it, and
    // every parameter in exactly one.
    auto model = cnn(100);
    std::vector<std::vector<size_t>> buckets;
    std::vector<size_t> bytes;
    {
        dist::DataParallel dp(*model, small);
        buckets = dp.bucket_params();
        bytes = dp.bucket_bytes();
        REQUIRE_THROWS_WITH(dist::DataParallel(*model), Catch::Contains("already belongs to another DataParallel"));
    }
    const size_t nparams = model->parameters().size();
    REQUIRE(buckets.size() == bytes.size());
    CHECK(buckets.size() > 5);
    std::vector<size_t> order;
    for (size_t b = 0; b < buckets.size(); b++) {
        CHECK((bytes[b] <= 1024 || buckets[b].size() == 1));
        order.insert(order.end(), buckets[b].begin(), buckets[b].end());
    }
    REQUIRE(order.size() == nparams);
    for (size_t i = 0; i < nparams; i++) CHECK(order[i] == nparams - 1 - i);
    // With overlap, every bucket starts from a gradient hook while backward runs; without, none does.
    for (bool overlap : {true, false}) {
        dist::DataParallelOptions o = small;
        o.overlap = overlap;
        dist::DataParallel d(*model, o);
        model->zero_grad();
        const auto b = global_batch(0, kShard);
        cross_entropy(d(b.first), b.second).backward();
        const size_t want = dist::world_size() == 1 ? 0 : overlap ? buckets.size() : 0;
        CHECK(d.last_buckets_started_early() == want);
    }
    // PyTorch's defaults: the whole baseline CNN for 8x8 images (about 0.5 MiB) fits the 1 MiB first bucket.
    dist::DataParallel dp_default(*model);
    CHECK(dp_default.bucket_params().size() == 1);
}

TEST_CASE("DataParallel: no_sync over K micro-batches equals one batch K times larger", "[dist][data_parallel]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    constexpr int kMicro = 3;
    const int64_t len = kShard * kMicro;  // this rank's rows of the global batch
    const auto batch = global_batch(11, n * len);
    const auto mine = shard(batch, r, len);

    auto model = cnn(100);
    dist::DataParallel dp(*model);
    model->zero_grad();
    for (int k = 0; k < kMicro; k++) {
        const auto micro = shard(mine, k, kShard);
        Tensor loss = mul(cross_entropy(dp(micro.first), micro.second), 1.0 / kMicro);
        if (k + 1 < kMicro) {
            auto guard = dp.no_sync();
            loss.backward();  // local accumulation only
        } else {
            loss.backward();  // reduces the accumulated gradients
        }
    }
    const std::vector<float> got = flat(model->parameters(), true);

    // The same accumulation in one process, rank by rank, summed in rank order: bit for bit with 2 ranks.
    auto ref = cnn(100);
    std::vector<std::vector<Tensor>> grads;
    for (int s = 0; s < n; s++) grads.push_back(shard_grads(*ref, batch, s, len, kMicro));
    set_mean_grads(*ref, grads);
    const std::vector<float> want = flat(ref->parameters(), true);
    CHECK(same_on_every_rank(got));
    if (n <= 2)
        CHECK(got == want);
    else
        CHECK(max_rel(got, want) < 1e-6);

    // One batch K times larger on every rank, through DataParallel: equal within rounding.
    auto big = cnn(100);
    dist::DataParallel dp_big(*big);
    cross_entropy(dp_big(mine.first), mine.second).backward();
    CHECK(max_rel(got, flat(big->parameters(), true)) < 1e-5);
}

namespace {
// Three heads on a shared trunk: head a always runs, head b only where `use_b` is set, head c never.
struct Heads : nn::Module {
    std::shared_ptr<nn::Linear> trunk, a, b, c;
    bool use_b = true;
    Heads() {
        manual_seed(5);
        trunk = register_module("trunk", std::make_shared<nn::Linear>(6, 4));
        a = register_module("a", std::make_shared<nn::Linear>(4, 3));
        b = register_module("b", std::make_shared<nn::Linear>(4, 3));
        c = register_module("c", std::make_shared<nn::Linear>(4, 3));
    }
    Tensor forward(const Tensor& x) override {
        Tensor h = relu((*trunk)(x));
        Tensor y = (*a)(h);
        return use_b ? add(y, (*b)(h)) : y;
    }
};
}  // namespace

TEST_CASE("DataParallel: a branch some ranks skip gets their zeros, one no rank takes keeps no gradient",
          "[dist][data_parallel]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    manual_seed(77);
    const Tensor x = Tensor::randn({4, 6});
    Heads model;
    dist::DataParallel dp(model);
    model.use_b = r == 0;
    sum(dp(add(x, double(r)))).backward();

    // Head b: rank 0's gradient over the sum with the others' zeros, times 1 / n.
    Heads ref;
    ref.use_b = true;
    sum(ref(x)).backward();
    const float scale = float(1.0 / n);
    std::vector<float> want = ref.b->weight().grad().to_vector<float>();
    for (float& v : want) v *= scale;
    REQUIRE(model.b->weight().grad().defined());
    CHECK(model.b->weight().grad().to_vector<float>() == want);
    CHECK(!model.c->weight().grad().defined());
    CHECK(!model.c->bias().grad().defined());
    CHECK(same_on_every_rank(flat(model.parameters(), true)));
}

TEST_CASE("DataParallel: rank 0's parameters and buffers at construction, and its buffers before each forward",
          "[dist][data_parallel]") {
    (void)job();
    const int r = dist::rank();
    manual_seed(uint64_t(300 + r));
    nn::Sequential model{std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(4)};
    auto buffers = [&] {
        std::vector<float> out;
        for (const auto& [name, t] : model.named_buffers())
            if (t.dtype() == DType::float32) {
                const auto v = t.to_vector<float>();
                out.insert(out.end(), v.begin(), v.end());
            }
        return out;
    };
    for (const auto& [name, t] : model.named_buffers())
        if (t.dtype() == DType::float32) const_cast<Tensor&>(t).fill_(double(r) + 0.5);
    dist::DataParallel dp(model);
    CHECK(same_on_every_rank(flat(model.parameters(), false)));
    CHECK(same_on_every_rank(buffers()));

    // The ranks' buffers drift apart (here by hand; in training, through different batches)...
    for (const auto& [name, t] : model.named_buffers())
        if (t.dtype() == DType::float32) const_cast<Tensor&>(t).fill_(double(r) + 1.5);
    manual_seed(9);
    const Tensor x = Tensor::randn({2, 1, 5, 5});
    {
        NoGradGuard ng;
        model.eval();
        (void)dp(x);  // eval: no broadcast, the buffers stay apart
        CHECK(buffers()[0] == float(r) + 1.5f);
        model.train();
        (void)dp(x);  // training: rank 0's buffers first, then the same batch's update everywhere
    }
    CHECK(same_on_every_rank(buffers()));
}

TEST_CASE("DataParallel: modules that differ between ranks, and GPU parameters, are clear errors",
          "[dist][data_parallel]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    if (n > 1) {
        // Rank 0 has one layer more: every rank throws, naming the counts.
        nn::Sequential model{std::make_shared<nn::Linear>(3, 3)};
        if (r == 0) model.push_back(std::make_shared<nn::Linear>(3, 3));
        REQUIRE_THROWS_WITH(dist::DataParallel(model), Catch::Contains("the ranks' modules differ"));
    }
    nn::Linear lin(2, 2);
    dist::DataParallelOptions bad;
    bad.bucket_cap_bytes = 0;
    REQUIRE_THROWS_WITH(dist::DataParallel(lin, bad), Catch::Contains("bucket caps must be positive"));
}

TEST_CASE("DataParallel with the loader's shares: data the ranks do not divide gives every rank the same steps",
          "[dist][data_parallel]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    // 11 images: 3 ranks share 12 positions (one image repeated), 2 ranks 12 as well; batches of 2 per rank
    // leave a partial last batch on no rank or on every rank alike, never an empty one.
    data::Dataset ds;
    std::vector<uint8_t> pixels(11 * 8 * 8);
    for (size_t i = 0; i < pixels.size(); i++) pixels[i] = uint8_t(i * 37 % 251);
    std::vector<int32_t> labels;
    for (int i = 0; i < 11; i++) labels.push_back(i % 5);
    ds.images = Tensor::from_vector(pixels, {11, 8, 8, 1});
    ds.labels = Tensor::from_vector(labels, {11});
    for (int i = 0; i < 5; i++) ds.class_ids.push_back(std::to_string(i)), ds.class_names.push_back(std::to_string(i));
    for (bool drop_last : {false, true}) {
        data::LoaderOptions lo;
        lo.batch_size = 2;
        lo.seed = 3;
        lo.rank = r;
        lo.world_size = n;
        lo.drop_last = drop_last;
        lo.prefetch = 0;
        data::Loader loader(ds, lo);
        auto model = cnn(100);
        dist::DataParallel dp(*model);
        optim::Sgd sgd(model->parameters(), {0.01});
        int64_t steps = 0, images = 0;
        loader.start_epoch(0);
        data::Batch b;
        while (loader.next(b)) {
            REQUIRE(b.x.size(0) > 0);
            sgd.zero_grad();
            cross_entropy(dp(b.x), b.y).backward();
            sgd.step();
            steps++;
            images += b.x.size(0);
        }
        INFO("drop_last " << drop_last);
        CHECK(dist::all_reduce(double(steps), dist::ReduceOp::min) ==
              dist::all_reduce(double(steps), dist::ReduceOp::max));
        CHECK(steps == loader.batches_per_epoch());
        // Every image once, plus the padding up to a multiple of the ranks (or cut to one, and partial
        // batches dropped, with drop_last).
        const int64_t total = int64_t(dist::all_reduce(double(images)));
        const int64_t share = drop_last ? 11 / n : (11 + n - 1) / n;
        CHECK(total == (drop_last ? n * (share / 2 * 2) : n * share));
        CHECK(same_on_every_rank(flat(model->parameters(), false)));
    }
}
