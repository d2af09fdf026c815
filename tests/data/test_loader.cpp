// Loader: batch counts, coverage of every image once per epoch, seeded permutations, prefetch depths giving
// identical batches, restarting and destroying mid-epoch, normalisation, deterministic augmentation, and
// argument errors. All on a small synthetic data set whose pixels say which image they come from. The GPU
// path (uploaded images, indices moved per batch) is not exercised here.
#include "support/catch.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;
using Catch::Contains;
using data::Batch;
using data::Dataset;
using data::Loader;
using data::LoaderOptions;

namespace {

constexpr int64_t kCount = 37, kH = 8, kW = 8, kC = 3;

// Pixel (y, x, ch) of image i. Pixel (0, 0, 0) is i itself, so an unaugmented batch names its images.
int pixel(int64_t i, int64_t y, int64_t x, int64_t ch) { return int((i + 5 * y + 11 * x + 71 * ch) % 256); }

// kCount images of kH x kW x kC with the pattern above, labels i % 5, 5 classes.
Dataset synthetic(int64_t count = kCount) {
    std::vector<uint8_t> px;
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < count; i++) {
        for (int64_t y = 0; y < kH; y++)
            for (int64_t x = 0; x < kW; x++)
                for (int64_t ch = 0; ch < kC; ch++) px.push_back(uint8_t(pixel(i, y, x, ch)));
        labels.push_back(int32_t(i % 5));
    }
    Dataset d;
    d.images = Tensor::from_vector(px, {count, kH, kW, kC});
    d.labels = Tensor::from_vector(labels, {count});
    d.class_ids = {"0", "1", "2", "3", "4"};
    d.class_names = d.class_ids;
    return d;
}

LoaderOptions options(int64_t batch_size, bool shuffle, uint64_t seed, int prefetch) {
    LoaderOptions o;
    o.batch_size = batch_size;
    o.shuffle = shuffle;
    o.seed = seed;
    o.prefetch = prefetch;
    return o;
}

std::vector<Batch> epoch_batches(Loader& loader, int64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<Batch> out;
    Batch b;
    while (loader.next(b)) out.push_back(b);
    return out;
}

// The images of an unaugmented, unnormalised batch, recovered from their pixels and checked against the
// whole pattern and the labels.
std::vector<int64_t> batch_images(const Batch& b) {
    REQUIRE(b.x.dtype() == DType::float32);
    REQUIRE(b.x.dim() == 4);
    const int64_t n = b.x.size(0);
    REQUIRE(b.x.shape() == Shape{n, kC, kH, kW});
    REQUIRE(b.y.dtype() == DType::int32);
    REQUIRE(b.y.shape() == Shape{n});
    REQUIRE(b.x.device().is_cpu());
    REQUIRE(b.y.device().is_cpu());
    const std::vector<float> x = b.x.to_vector<float>();
    const std::vector<int32_t> y = b.y.to_vector<int32_t>();
    std::vector<int64_t> ids;
    for (int64_t s = 0; s < n; s++) {
        const int64_t i = int64_t(x[size_t(s * kC * kH * kW)] * 255.0f + 0.5f);
        REQUIRE(i >= 0);
        REQUIRE(i < kCount);
        int64_t wrong = 0;  // pixels of the sample that do not match image i
        for (int64_t ch = 0; ch < kC; ch++)
            for (int64_t yy = 0; yy < kH; yy++)
                for (int64_t xx = 0; xx < kW; xx++)
                    wrong += x[size_t(((s * kC + ch) * kH + yy) * kW + xx)] != float(pixel(i, yy, xx, ch)) / 255.0f;
        CAPTURE(s, i);
        REQUIRE(wrong == 0);
        REQUIRE(y[size_t(s)] == int32_t(i % 5));
        ids.push_back(i);
    }
    return ids;
}

// The image order of a whole epoch.
std::vector<int64_t> epoch_order(Loader& loader, int64_t epoch) {
    std::vector<int64_t> order;
    for (const Batch& b : epoch_batches(loader, epoch)) {
        const std::vector<int64_t> ids = batch_images(b);
        order.insert(order.end(), ids.begin(), ids.end());
    }
    return order;
}

void require_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); k++) {
        REQUIRE(a[k].index == int64_t(k));
        REQUIRE(b[k].index == int64_t(k));
        test::require_identical(a[k].x, b[k].x);
        REQUIRE(a[k].y.shape() == b[k].y.shape());
        REQUIRE(a[k].y.to_vector<int32_t>() == b[k].y.to_vector<int32_t>());
    }
}

bool same_x(const Batch& a, const Batch& b) {
    return a.x.shape() == b.x.shape() && test::same_bits(a.x.to_vector<float>(), b.x.to_vector<float>());
}

// Augmented options: pad 2, random crop and flip, a 6x6 window, normalised.
LoaderOptions augmented(int64_t batch_size, bool shuffle, uint64_t seed, int prefetch) {
    LoaderOptions o = options(batch_size, shuffle, seed, prefetch);
    o.augment.pad = 2;
    o.augment.crop = true;
    o.augment.flip = true;
    o.augment.out_h = 6;
    o.augment.out_w = 6;
    o.mean = {0.25f, 0.5f, 0.75f};
    o.std = {0.5f, 0.25f, 2.0f};
    return o;
}

}  // namespace

TEST_CASE("Loader: batches per epoch with and without drop_last", "[data][loader]") {
    const Dataset d = synthetic();
    struct Case {
        int64_t batch_size;
        bool drop_last;
        int64_t batches, last_size;
    };
    // 37 = 4 * 8 + 5, = 3 * 10 + 7, = 37 * 1.
    for (const Case& k :
         {Case{8, false, 5, 5}, Case{8, true, 4, 8}, Case{10, false, 4, 7}, Case{10, true, 3, 10},
          Case{37, false, 1, 37}, Case{37, true, 1, 37}, Case{1, true, 37, 1}, Case{50, false, 1, 37}}) {
        CAPTURE(k.batch_size, k.drop_last);
        LoaderOptions o = options(k.batch_size, true, 7, 0);
        o.drop_last = k.drop_last;
        Loader loader(d, o);
        REQUIRE(loader.batches_per_epoch() == k.batches);
        const std::vector<Batch> batches = epoch_batches(loader, 0);
        REQUIRE(int64_t(batches.size()) == k.batches);
        for (size_t b = 0; b < batches.size(); b++) {
            REQUIRE(batches[b].index == int64_t(b));
            const int64_t want = b + 1 == batches.size() ? k.last_size : k.batch_size;
            REQUIRE(batches[b].x.size(0) == want);
            REQUIRE(batches[b].y.size(0) == want);
        }
        Batch extra;
        REQUIRE_FALSE(loader.next(extra));  // the end stays the end
        REQUIRE_FALSE(loader.next(extra));
    }
}

TEST_CASE("Loader: every image appears exactly once per epoch", "[data][loader]") {
    const Dataset d = synthetic();
    for (int prefetch : {0, 2}) {
        CAPTURE(prefetch);
        Loader loader(d, options(8, true, 123, prefetch));
        for (int64_t epoch : {0, 1, 2}) {
            CAPTURE(epoch);
            std::vector<int64_t> order = epoch_order(loader, epoch);
            REQUIRE(int64_t(order.size()) == kCount);
            std::sort(order.begin(), order.end());
            for (int64_t i = 0; i < kCount; i++) REQUIRE(order[size_t(i)] == i);
        }
        // drop_last: 32 distinct images, the 5 dropped ones differ between epochs.
        LoaderOptions o = options(8, true, 123, prefetch);
        o.drop_last = true;
        Loader dropping(d, o);
        std::set<int64_t> dropped_0, dropped_1;
        for (int64_t epoch : {0, 1}) {
            const std::vector<int64_t> order = epoch_order(dropping, epoch);
            REQUIRE(order.size() == 32);
            const std::set<int64_t> seen(order.begin(), order.end());
            REQUIRE(seen.size() == 32);
            for (int64_t i = 0; i < kCount; i++)
                if (!seen.count(i)) (epoch == 0 ? dropped_0 : dropped_1).insert(i);
        }
        REQUIRE(dropped_0.size() == 5);
        REQUIRE(dropped_1.size() == 5);
        REQUIRE(dropped_0 != dropped_1);
    }
}

TEST_CASE("Loader: ranks' shares follow PyTorch's DistributedSampler", "[data][loader][dist]") {
    // 37 images over 1, 2, 3 and 5 ranks: every rank draws the single-process permutation, pads it with its
    // first indices to a multiple of the world size (drop_last: cuts it), and takes positions rank, rank +
    // world, ...; the shares are equal in size and together are the padded (or cut) epoch.
    const Dataset d = synthetic();
    for (bool drop_last : {false, true})
        for (int world : {1, 2, 3, 5}) {
            CAPTURE(drop_last, world);
            LoaderOptions base = options(4, true, 77, 0);
            base.drop_last = drop_last;
            Loader whole(d, options(4, true, 77, 0));
            const std::vector<int64_t> perm = epoch_order(whole, 3);  // the single-process epoch 3
            const int64_t shard = drop_last ? kCount / world : (kCount + world - 1) / world;
            std::vector<int64_t> all;
            for (int r = 0; r < world; r++) {
                LoaderOptions o = base;
                o.rank = r, o.world_size = world;
                Loader loader(d, o);
                REQUIRE(loader.batches_per_epoch() == (drop_last ? shard / 4 : (shard + 3) / 4));
                const std::vector<int64_t> mine = epoch_order(loader, 3);
                REQUIRE(int64_t(mine.size()) == (drop_last ? shard / 4 * 4 : shard));
                for (size_t i = 0; i < mine.size(); i++)
                    REQUIRE(mine[i] == perm[size_t((int64_t(i) * world + r) % kCount)]);
                all.insert(all.end(), mine.begin(), mine.end());
            }
            if (!drop_last) {  // every image at least once; the padding repeats the epoch's first ones
                const std::set<int64_t> seen(all.begin(), all.end());
                REQUIRE(int64_t(seen.size()) == kCount);
                REQUIRE(int64_t(all.size()) == shard * world);
            }
        }
    // Rank 0 of 1 is the single-process loader, augmentation included.
    LoaderOptions o = options(5, true, 9, 0);
    o.augment.flip = true;
    Loader plain(d, o);
    o.rank = 0, o.world_size = 1;
    Loader single(d, o);
    const std::vector<Batch> a = epoch_batches(plain, 1), b = epoch_batches(single, 1);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); i++) REQUIRE(test::values(a[i].x) == test::values(b[i].x));
    // Bad ranks, and more ranks than images with drop_last.
    LoaderOptions bad = options(4, true, 1, 0);
    bad.rank = 3, bad.world_size = 3;
    REQUIRE_THROWS_WITH(Loader(d, bad), Catch::Contains("rank 3 of world_size 3 is not a rank"));
    bad.rank = 0, bad.world_size = 0;
    REQUIRE_THROWS_WITH(Loader(d, bad), Catch::Contains("world_size 0"));
    bad.world_size = 40, bad.drop_last = true;
    REQUIRE_THROWS_WITH(Loader(d, bad), Catch::Contains("37 images for 40 ranks with drop_last"));
}

TEST_CASE("Loader: the permutation is seeded per epoch and leaves the global generator alone", "[data][loader]") {
    const Dataset d = synthetic();
    std::vector<int64_t> identity(kCount);
    for (int64_t i = 0; i < kCount; i++) identity[size_t(i)] = i;

    manual_seed(5);
    const RngState before = rng_state();
    Loader a(d, options(8, true, 42, 0));
    const std::vector<int64_t> a0 = epoch_order(a, 0), a1 = epoch_order(a, 1), a2 = epoch_order(a, 2);
    const RngState after = rng_state();
    REQUIRE(std::memcmp(before.s, after.s, sizeof(before.s)) == 0);

    REQUIRE(a0 != identity);
    REQUIRE(a0 != a1);
    REQUIRE(a1 != a2);
    REQUIRE(a0 != a2);

    // Same seed: the same orders, whatever the global generator's state and in any epoch order.
    manual_seed(999);
    Loader b(d, options(8, true, 42, 0));
    REQUIRE(epoch_order(b, 2) == a2);
    REQUIRE(epoch_order(b, 0) == a0);
    REQUIRE(epoch_order(b, 1) == a1);
    REQUIRE(epoch_order(b, 0) == a0);  // an epoch again

    // A uniform shuffle leaves some image in place in about 63% of epochs (1 - 1/e); a shuffle that never
    // does (the off-by-one that gives a single cycle) is not uniform.
    bool fixed_point = false;
    for (int64_t epoch = 0; epoch < 12 && !fixed_point; epoch++) {
        const std::vector<int64_t> order = epoch_order(b, epoch);
        for (int64_t i = 0; i < kCount; i++) fixed_point = fixed_point || order[size_t(i)] == i;
    }
    REQUIRE(fixed_point);

    // A different seed: a different order; a different batch size: the same permutation.
    Loader c(d, options(8, true, 43, 0));
    REQUIRE(epoch_order(c, 0) != a0);
    Loader e(d, options(5, true, 42, 0));
    REQUIRE(epoch_order(e, 1) == a1);
}

TEST_CASE("Loader: shuffle off keeps the stored order in every epoch", "[data][loader]") {
    const Dataset d = synthetic();
    std::vector<int64_t> identity(kCount);
    for (int64_t i = 0; i < kCount; i++) identity[size_t(i)] = i;
    for (int prefetch : {0, 1}) {
        Loader loader(d, options(6, false, 42, prefetch));
        REQUIRE(epoch_order(loader, 0) == identity);
        REQUIRE(epoch_order(loader, 3) == identity);
    }
}

TEST_CASE("Loader: prefetch depths 0, 1 and 3 give identical batches", "[data][loader]") {
    const Dataset d = synthetic();
    Loader l0(d, augmented(8, true, 77, 0));
    const std::vector<Batch> e0 = epoch_batches(l0, 0), e1 = epoch_batches(l0, 1), e4 = epoch_batches(l0, 4);
    REQUIRE(e0.size() == 5);
    REQUIRE_FALSE(same_x(e0[0], e1[0]));
    for (int prefetch : {1, 3}) {
        CAPTURE(prefetch);
        Loader lp(d, augmented(8, true, 77, prefetch));
        require_same_batches(epoch_batches(lp, 4), e4);  // skipping epochs: a batch depends only on its epoch
        require_same_batches(epoch_batches(lp, 0), e0);
        require_same_batches(epoch_batches(lp, 1), e1);
    }
}

TEST_CASE("Loader: restarting an epoch mid-way", "[data][loader]") {
    const Dataset d = synthetic();
    Loader reference(d, augmented(4, true, 9, 0));
    const std::vector<Batch> e0 = epoch_batches(reference, 0), e1 = epoch_batches(reference, 1);
    for (int prefetch : {0, 1, 3}) {
        CAPTURE(prefetch);
        Loader loader(d, augmented(4, true, 9, prefetch));
        Batch b;
        loader.start_epoch(0);
        REQUIRE(loader.next(b));
        REQUIRE(loader.next(b));
        REQUIRE(b.index == 1);
        // Give a producer time to fill its queue and block on it before it is stopped.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        require_same_batches(epoch_batches(loader, 1), e1);
        // Restarting the same epoch mid-way starts it again from batch 0.
        loader.start_epoch(0);
        REQUIRE(loader.next(b));
        REQUIRE(loader.next(b));
        require_same_batches(epoch_batches(loader, 0), e0);
        // Restarting right after starting (the producer may not have made anything yet).
        loader.start_epoch(1);
        loader.start_epoch(1);
        std::vector<Batch> again;
        while (loader.next(b)) again.push_back(b);
        require_same_batches(again, e1);
    }
}

TEST_CASE("Loader: destroying a loader mid-epoch returns promptly", "[data][loader]") {
    const Dataset d = synthetic();
    const auto start = std::chrono::steady_clock::now();
    for (int prefetch : {1, 2, 8}) {
        {
            Loader loader(d, augmented(2, true, 1, prefetch));  // 19 batches: the queue fills up
            loader.start_epoch(0);
            Batch b;
            REQUIRE(loader.next(b));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        {
            Loader loader(d, augmented(2, true, 1, prefetch));
            loader.start_epoch(3);  // destroyed without taking a batch
        }
        { Loader loader(d, augmented(2, true, 1, prefetch)); }  // never started
        {
            Loader loader(d, augmented(2, true, 1, prefetch));  // finished epoch
            REQUIRE(epoch_batches(loader, 0).size() == 19);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(seconds < 1.5);
}

TEST_CASE("Loader: normalisation by mean and std per channel", "[data][loader]") {
    const Dataset d = synthetic();
    LoaderOptions o = options(37, false, 0, 0);
    o.mean = {0.1f, 0.5f, 0.9f};
    o.std = {0.2f, 0.25f, 0.5f};
    Loader loader(d, o);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(b.x.shape() == Shape{kCount, kC, kH, kW});
    const std::vector<float> x = b.x.to_vector<float>();
    auto at = [&](int64_t s, int64_t ch, int64_t y, int64_t xx) {
        return x[size_t(((s * kC + ch) * kH + y) * kW + xx)];
    };

    // By hand: image 3, row 2, column 5, channel 1 holds (3 + 10 + 55 + 71) = 139;
    // (139 / 255 - 0.5) / 0.25 = 0.180392...
    REQUIRE(pixel(3, 2, 5, 1) == 139);
    REQUIRE(at(3, 1, 2, 5) == Approx(0.1803921569).epsilon(1e-6));
    // Image 0, origin, channel 0 holds 0: (0 - 0.1) / 0.2 = -0.5; channel 2 holds 142: (142/255 - 0.9) / 0.5.
    REQUIRE(at(0, 0, 0, 0) == Approx(-0.5).epsilon(1e-6));
    REQUIRE(at(0, 2, 0, 0) == Approx((142.0 / 255.0 - 0.9) / 0.5).epsilon(1e-6));

    // Every value by the documented formula, in float.
    for (int64_t s = 0; s < kCount; s++)
        for (int64_t ch = 0; ch < kC; ch++)
            for (int64_t y = 0; y < kH; y++)
                for (int64_t xx = 0; xx < kW; xx++) {
                    const float want =
                        (float(pixel(s, y, xx, ch)) / 255.0f - o.mean[size_t(ch)]) * (1.0f / o.std[size_t(ch)]);
                    REQUIRE(at(s, ch, y, xx) == want);
                }
}

TEST_CASE("Loader: augmentation windows are valid and follow seed, epoch and batch", "[data][loader]") {
    const Dataset d = synthetic();
    const int64_t pad = 2, out = 6, bs = 8;
    LoaderOptions o = options(bs, false, 5, 0);  // unshuffled: sample s of batch b is image b * bs + s
    o.augment.pad = pad;
    o.augment.crop = true;
    o.augment.flip = true;
    o.augment.out_h = out;
    o.augment.out_w = out;
    Loader loader(d, o);
    const std::vector<Batch> e0 = epoch_batches(loader, 0), e1 = epoch_batches(loader, 1);

    // Each sample is a window of its zero-padded image at some (dy, dx) in [0, 2 pad], maybe flipped.
    std::set<std::vector<int64_t>> draws;
    std::vector<std::vector<std::vector<int64_t>>> per_batch;  // the draw of each sample, batch by batch
    for (const Batch& b : e0) {
        const std::vector<float> x = b.x.to_vector<float>();
        REQUIRE(b.x.shape() == Shape{b.y.size(0), kC, out, out});
        for (int64_t s = 0; s < b.x.size(0); s++) {
            const int64_t i = b.index * bs + s;
            std::vector<std::vector<int64_t>> matches;
            for (int64_t dy = 0; dy <= 2 * pad; dy++)
                for (int64_t dx = 0; dx <= 2 * pad; dx++)
                    for (int64_t flip = 0; flip < 2; flip++) {
                        bool ok = true;
                        for (int64_t ch = 0; ch < kC && ok; ch++)
                            for (int64_t y = 0; y < out && ok; y++)
                                for (int64_t xx = 0; xx < out && ok; xx++) {
                                    const int64_t sy = y + dy - pad, sx = (flip ? out - 1 - xx : xx) + dx - pad;
                                    const bool inside = sy >= 0 && sy < kH && sx >= 0 && sx < kW;
                                    const float want = inside ? float(pixel(i, sy, sx, ch)) / 255.0f : 0.0f;
                                    ok = x[size_t(((s * kC + ch) * out + y) * out + xx)] == want;
                                }
                        if (ok) matches.push_back({dy, dx, flip});
                    }
            CAPTURE(b.index, s);
            REQUIRE(matches.size() >= 1);
            draws.insert(matches.front());
            if (s == 0) per_batch.emplace_back();
            per_batch.back().push_back(matches.front());
        }
    }
    // The draws vary: over 37 samples, several windows, flipped and not.
    REQUIRE(draws.size() >= 5);
    bool flipped = false, unflipped = false;
    for (const auto& dr : draws) (dr[2] ? flipped : unflipped) = true;
    REQUIRE(flipped);
    REQUIRE(unflipped);
    // Every batch has its own draws (a seed shared by all batches would repeat them).
    REQUIRE(per_batch.size() == 5);
    for (size_t k = 1; k + 1 < per_batch.size(); k++) REQUIRE(per_batch[k] != per_batch[0]);

    // Same images in every epoch (no shuffle) but new draws; the same (seed, epoch, batch) repeats exactly.
    REQUIRE(e0.size() == e1.size());
    for (size_t k = 0; k < e0.size(); k++) REQUIRE(e0[k].y.to_vector<int32_t>() == e1[k].y.to_vector<int32_t>());
    REQUIRE_FALSE(same_x(e0[0], e1[0]));
    Loader again(d, o);
    require_same_batches(epoch_batches(again, 1), e1);
    require_same_batches(epoch_batches(again, 0), e0);
    LoaderOptions other = o;
    other.seed = 6;
    Loader reseeded(d, other);
    REQUIRE_FALSE(same_x(epoch_batches(reseeded, 0)[0], e0[0]));
}

TEST_CASE("Loader: the data set may be a view and go out of scope", "[data][loader]") {
    // A loader keeps handles to the pixels: the Dataset object may go away. The images may be a slice.
    std::unique_ptr<Loader> loader;
    {
        Dataset d = synthetic(kCount + 3);
        Dataset part;
        part.images = d.images.slice(0, 0, kCount);
        part.labels = d.labels.slice(0, 0, kCount);
        loader = std::make_unique<Loader>(part, options(10, true, 3, 2));
    }
    std::vector<int64_t> order = epoch_order(*loader, 0);
    std::sort(order.begin(), order.end());
    REQUIRE(int64_t(order.size()) == kCount);
    for (int64_t i = 0; i < kCount; i++) REQUIRE(order[size_t(i)] == i);
}

TEST_CASE("Loader: argument errors", "[data][loader]") {
    const Dataset d = synthetic();
    LoaderOptions o = options(8, true, 0, 0);

    LoaderOptions bad = o;
    bad.batch_size = 0;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("batch_size must be >= 1, got 0"));
    bad.batch_size = -3;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("got -3"));
    bad = o;
    bad.prefetch = -1;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("prefetch"));
    bad = o;
    bad.batch_size = 40;
    bad.drop_last = true;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("drop_last") && Contains("40") && Contains("37"));

    REQUIRE_THROWS_WITH(Loader(Dataset{}, o), Contains("empty"));
    Dataset empty;
    empty.images = Tensor::zeros({0, kH, kW, kC}, DType::uint8);
    empty.labels = Tensor::zeros({0}, DType::int32);
    REQUIRE_THROWS_WITH(Loader(empty, o), Contains("empty"));

    Dataset wrong = d;
    wrong.images = d.images.to(DType::float32);
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("uint8") && Contains("float32"));
    wrong.images = d.images.reshape({kCount, kH * kW, kC});
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("(37, 64, 3)"));

    wrong = d;
    wrong.labels = d.labels.slice(0, 0, 30);
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("30 labels for 37 images"));
    wrong.labels = Tensor();
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("no labels"));
    wrong.labels = d.labels.to(DType::float32);
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("int32"));
    wrong.labels = Tensor::full({kCount}, 5, DType::int32);  // 5 classes: 5 is out of range
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("label 5") && Contains("[0, 5)"));
    wrong.labels = Tensor::full({kCount}, -1, DType::int32);
    REQUIRE_THROWS_WITH(Loader(wrong, o), Contains("label -1"));

    bad = o;
    bad.mean = {0.5f, 0.5f};
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("mean has 2 entries") && Contains("3 channels"));
    bad = o;
    bad.std = {1.0f, 0.0f, 1.0f};
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("std[1]"));
    bad = o;
    bad.augment.out_h = 20;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("larger than the padded image"));
    bad = o;
    bad.augment.pad = -1;
    REQUIRE_THROWS_WITH(Loader(d, bad), Contains("pad"));

    Loader loader(d, o);
    Batch b;
    REQUIRE_THROWS_WITH(loader.next(b), Contains("start_epoch"));
    REQUIRE_THROWS_WITH(loader.start_epoch(-1), Contains("epoch must be >= 0, got -1"));
    loader.start_epoch(0);
    REQUIRE(loader.next(b));
    REQUIRE(loader.options().batch_size == 8);
}
