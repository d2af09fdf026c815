// Loader: batches of an in-memory uint8 image data set. Each epoch has its own permutation, drawn from a
// generator seeded by (seed, epoch) and local to the loader (the process-wide generator behind randn is not
// touched); each batch is made by image_batch with a seed mixed from (seed, epoch, batch index), so a batch
// depends on nothing else. Batches are made on the caller's thread or, with prefetch > 0, by one background
// thread into a bounded queue. On a GPU the images and labels are uploaded once and only the indices of a
// batch travel.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "dyad/data.h"
#include "dyad/device.h"
#include "dyad/error.h"
#include "dyad/ops.h"

namespace dyad::data {

namespace {

// SplitMix64's output function: a bijective 64-bit mix.
uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// xoshiro256**, seeded through SplitMix64 so that any seed (zero included) gives a valid state.
class Xoshiro {
public:
    explicit Xoshiro(uint64_t seed) {
        for (uint64_t& v : s_) {
            seed += 0x9e3779b97f4a7c15ull;
            v = mix64(seed);
        }
    }
    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    // Uniform in [0, bound), bound >= 1, without modulo bias (rejection of the incomplete top range).
    uint64_t below(uint64_t bound) {
        const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
        uint64_t x;
        do x = next();
        while (x >= limit);
        return x % bound;
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

// Domain constants keep the permutation and augmentation streams apart for the same (seed, epoch).
constexpr uint64_t kPermDomain = 0x7065726d75746531ull;   // "permute1"
constexpr uint64_t kBatchDomain = 0x6175676d656e7431ull;  // "augment1"

uint64_t permutation_seed(uint64_t seed, int64_t epoch) { return mix64(mix64(seed ^ kPermDomain) ^ uint64_t(epoch)); }

uint64_t batch_seed(uint64_t seed, int64_t epoch, int64_t batch) {
    return mix64(mix64(mix64(seed ^ kBatchDomain) ^ uint64_t(epoch)) ^ uint64_t(batch));
}

}  // namespace

struct Loader::Impl {
    LoaderOptions options;
    std::vector<float> mean, std;  // one entry per channel (the defaults filled in)
    Tensor images;                 // uint8 (count, h, w, c), contiguous, on options.device
    std::vector<int32_t> labels;   // on the host, for gathering y
    int64_t count = 0;             // images in the data set
    int64_t shard = 0;             // images in this rank's share of an epoch
    int64_t batches = 0;

    // The current epoch.
    bool started = false;
    int64_t epoch = 0;
    std::vector<int32_t> order;  // the epoch's permutation (read-only while a producer runs)
    int64_t cursor = 0;          // next batch to hand out (prefetch == 0) or to pop (prefetch > 0)

    // Prefetching: the producer pushes batches in order; next() pops them.
    std::thread producer;
    std::mutex mutex;
    std::condition_variable not_full, not_empty;
    std::deque<Batch> queue;
    bool stop = false;         // set by the consumer: the producer leaves as soon as it sees it
    bool finished = false;     // set by the producer when it has pushed its last batch (or failed)
    std::exception_ptr error;  // the producer's failure, rethrown by next() after the batches before it

    // Batch b of the current epoch; touches nothing shared but read-only state.
    Batch make(int64_t b) const {
        const int64_t begin = b * options.batch_size;
        const int64_t end = std::min(begin + options.batch_size, shard);
        const int64_t n = end - begin;
        std::vector<int32_t> idx(order.begin() + begin, order.begin() + end);
        std::vector<int32_t> y(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) y[size_t(i)] = labels[size_t(idx[size_t(i)])];
        Tensor indices = Tensor::from_vector(idx, {n});
        if (!options.device.is_cpu()) indices = indices.to(options.device);
        Batch batch;
        // Batch b of rank r draws stream b * world_size + r: rank 0 of 1 keeps the single-process stream,
        // and no two ranks share one.
        batch.x = image_batch(images, indices, mean, std, options.augment,
                              batch_seed(options.seed, epoch, b * options.world_size + options.rank));
        batch.y = Tensor::from_vector(y, {n});
        if (!options.device.is_cpu()) batch.y = batch.y.to(options.device);
        batch.index = b;
        return batch;
    }

    void produce(int threads) {
        set_num_threads(threads);  // OpenMP's thread count is per thread: use the one the caller had
        try {
            for (int64_t b = 0; b < batches; b++) {
                {
                    std::lock_guard<std::mutex> lock(mutex);
                    if (stop) break;
                }
                Batch batch = make(b);
                std::unique_lock<std::mutex> lock(mutex);
                not_full.wait(lock, [&] { return stop || int64_t(queue.size()) < options.prefetch; });
                if (stop) break;
                queue.push_back(std::move(batch));
                not_empty.notify_one();
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mutex);
        finished = true;
        not_empty.notify_all();
    }

    void stop_producer() {
        if (!producer.joinable()) return;
        {
            std::lock_guard<std::mutex> lock(mutex);
            stop = true;
        }
        not_full.notify_all();
        producer.join();
        queue.clear();
        stop = false;
        finished = false;
        error = nullptr;
    }
};

Loader::Loader(const Dataset& data, LoaderOptions options) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    const char* op = "Loader";
    DYAD_CHECK(options.batch_size >= 1, op, ": batch_size must be >= 1, got ", options.batch_size);
    DYAD_CHECK(options.prefetch >= 0, op, ": prefetch must be >= 0 (0 = no background thread), got ", options.prefetch);
    DYAD_CHECK(data.images.defined(), op, ": the data set has no images (empty data set)");
    const Tensor& images = data.images;
    DYAD_CHECK(images.dtype() == DType::uint8 && images.dim() == 4, op, ": images must be uint8 (count, h, w, c), got ",
               dtype_name(images.dtype()), " ", shape_str(images.shape()));
    const int64_t count = images.size(0), c = images.size(3);
    DYAD_CHECK(count > 0, op, ": the data set is empty (images ", shape_str(images.shape()), ")");
    DYAD_CHECK(count <= std::numeric_limits<int32_t>::max(), op, ": ", count,
               " images are more than int32 indices can address");
    DYAD_CHECK(images.size(1) > 0 && images.size(2) > 0 && c > 0, op,
               ": images (count, h, w, c) need h, w and c > 0, got ", shape_str(images.shape()));
    DYAD_CHECK(data.labels.defined(), op, ": the data set has ", count, " images but no labels");
    DYAD_CHECK(data.labels.dtype() == DType::int32 && data.labels.dim() == 1, op,
               ": labels must be int32 (count), got ", dtype_name(data.labels.dtype()), " ",
               shape_str(data.labels.shape()));
    DYAD_CHECK(data.labels.size(0) == count, op, ": ", data.labels.size(0), " labels for ", count, " images");
    DYAD_CHECK(options.world_size >= 1 && options.rank >= 0 && options.rank < options.world_size, op, ": rank ",
               options.rank, " of world_size ", options.world_size, " is not a rank (0 <= rank < world_size)");
    const int64_t world = options.world_size;
    const int64_t shard = options.drop_last ? count / world : (count + world - 1) / world;
    DYAD_CHECK(shard > 0, op, ": ", count, " images for ", world, " ranks with drop_last leave rank ", options.rank,
               " none");
    DYAD_CHECK(!(options.drop_last && options.batch_size > shard), op, ": drop_last with batch_size ",
               options.batch_size, " larger than the ", world > 1 ? "rank's share of the data set" : "data set", " (",
               shard, " images) gives no batches");

    m.labels = data.labels.to_vector<int32_t>();
    for (size_t i = 0; i < m.labels.size(); i++) {
        DYAD_CHECK(m.labels[i] >= 0, op, ": label ", m.labels[i], " of image ", i, " is negative");
        DYAD_CHECK(data.classes() == 0 || m.labels[i] < data.classes(), op, ": label ", m.labels[i], " of image ", i,
                   " is outside [0, ", data.classes(), ") for ", data.classes(), " classes");
    }

    m.mean = options.mean.empty() ? std::vector<float>(size_t(c), 0.0f) : options.mean;
    m.std = options.std.empty() ? std::vector<float>(size_t(c), 1.0f) : options.std;
    DYAD_CHECK(int64_t(m.mean.size()) == c, op, ": mean has ", m.mean.size(), " entries but the images have ", c,
               " channels");
    DYAD_CHECK(int64_t(m.std.size()) == c, op, ": std has ", m.std.size(), " entries but the images have ", c,
               " channels");
    for (size_t k = 0; k < m.mean.size(); k++)
        DYAD_CHECK(std::isfinite(m.mean[k]), op, ": mean[", k, "] must be finite, got ", m.mean[k]);

    m.count = count;
    m.shard = shard;
    m.batches = options.drop_last ? shard / options.batch_size : (shard + options.batch_size - 1) / options.batch_size;
    m.images = images.contiguous().to(options.device);  // one upload on a GPU; a handle on the CPU
    m.options = std::move(options);

    // image_batch's own checks (std > 0, pad range, the window fitting the padded image) on an empty batch,
    // so that bad options fail here rather than at the first batch.
    image_batch(m.images, Tensor::empty({0}, DType::int32, m.options.device), m.mean, m.std, m.options.augment, 0);
}

Loader::~Loader() { impl_->stop_producer(); }

int64_t Loader::batches_per_epoch() const { return impl_->batches; }

const LoaderOptions& Loader::options() const { return impl_->options; }

void Loader::start_epoch(int64_t epoch) {
    Impl& m = *impl_;
    DYAD_CHECK(epoch >= 0, "Loader: epoch must be >= 0, got ", epoch);
    m.stop_producer();
    m.epoch = epoch;
    m.cursor = 0;
    m.order.resize(size_t(m.count));
    for (int64_t i = 0; i < m.count; i++) m.order[size_t(i)] = int32_t(i);
    if (m.options.shuffle) {
        Xoshiro rng(permutation_seed(m.options.seed, epoch));
        for (int64_t i = m.count - 1; i > 0; i--) std::swap(m.order[size_t(i)], m.order[rng.below(uint64_t(i) + 1)]);
    }
    if (m.options.world_size > 1) {  // this rank's share: positions rank, rank + world, ... of the padded or
                                     // cut epoch (position k of the padded epoch is index k mod count)
        const int64_t world = m.options.world_size;
        std::vector<int32_t> mine(size_t(m.shard));
        for (int64_t i = 0; i < m.shard; i++) mine[size_t(i)] = m.order[size_t((i * world + m.options.rank) % m.count)];
        m.order = std::move(mine);
    }
    m.started = true;
    if (m.options.prefetch > 0 && m.batches > 0) {
        const int threads = num_threads();
        m.producer = std::thread([&m, threads] { m.produce(threads); });
    }
}

bool Loader::next(Batch& batch) {
    Impl& m = *impl_;
    DYAD_CHECK(m.started, "Loader: next() before start_epoch()");
    if (m.cursor >= m.batches) return false;
    if (m.options.prefetch == 0) {
        batch = m.make(m.cursor);
        m.cursor++;
        return true;
    }
    std::unique_lock<std::mutex> lock(m.mutex);
    m.not_empty.wait(lock, [&] { return !m.queue.empty() || m.finished; });
    if (m.queue.empty()) {
        // The producer has ended without the batch: it failed (it pushes every batch otherwise).
        if (m.error) std::rethrow_exception(m.error);
        DYAD_CHECK(false, "Loader: batch ", m.cursor, " of epoch ", m.epoch, " was never produced");
    }
    batch = std::move(m.queue.front());
    m.queue.pop_front();
    m.cursor++;
    lock.unlock();
    m.not_full.notify_one();
    return true;
}

}  // namespace dyad::data
