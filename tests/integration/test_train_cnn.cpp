// End to end on the CPU: the baseline CNN (models::baseline_cnn) learns a generated four-class image
// problem with SGD + momentum in a few dozen steps, on the omp kernels (and, in the [slow] variant, on
// the naive kernels too).
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;

namespace {

constexpr int64_t kSize = 16, kClasses = 4;

// Grey 16x16 images of four kinds, each with a random phase and Gaussian noise of std 0.5 (the signal
// has amplitude 1): horizontal stripes, vertical stripes, diagonal stripes, a bright square at a random
// position. Labels cycle through the classes.
std::pair<Tensor, Tensor> make_data(int64_t n, uint64_t seed) {
    manual_seed(seed);
    const std::vector<float> noise = (Tensor::randn({n, kSize, kSize}) * 0.5).to_vector<float>();
    const std::vector<float> phase = Tensor::rand({n, 2}).to_vector<float>();
    std::vector<float> img(static_cast<size_t>(n * kSize * kSize));
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) {
        const int cls = int(i % kClasses);
        labels[size_t(i)] = cls;
        const int ph = int(phase[size_t(2 * i)] * 4), ox = int(phase[size_t(2 * i + 1)] * 8);
        for (int64_t y = 0; y < kSize; y++) {
            for (int64_t x = 0; x < kSize; x++) {
                float v = 0;
                if (cls == 0) v = ((y + ph) / 2) % 2 ? 1.f : -1.f;
                if (cls == 1) v = ((x + ph) / 2) % 2 ? 1.f : -1.f;
                if (cls == 2) v = ((x + y + ph) / 2) % 2 ? 1.f : -1.f;
                if (cls == 3) v = (y >= ox && y < ox + 8 && x >= 4 && x < 12) ? 1.5f : -0.5f;
                const size_t at = size_t((i * kSize + y) * kSize + x);
                img[at] = v + noise[at];
            }
        }
    }
    return {Tensor::from_vector(img, {n, 1, kSize, kSize}), Tensor::from_vector(labels, {n})};
}

double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
    NoGradGuard ng;
    model.eval();
    const std::vector<int32_t> pred = argmax((model)(x), 1).to_vector<int32_t>();
    model.train();
    const std::vector<int32_t> truth = y.to_vector<int32_t>();
    int64_t ok = 0;
    for (size_t i = 0; i < pred.size(); i++) ok += pred[i] == truth[i];
    return double(ok) / double(pred.size());
}

struct Result {
    double first_loss, last_loss, test_accuracy;
};

Result train(CpuKernels kernels, int steps) {
    CpuKernelsGuard guard(kernels);
    const int64_t batch = 32;
    auto [train_x, train_y] = make_data(512, 1);
    auto [test_x, test_y] = make_data(256, 2);
    manual_seed(3);
    auto model = models::baseline_cnn(kClasses, 1, kSize);
    optim::SgdOptions o;
    o.lr = 0.02;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    optim::Sgd sgd(model->named_parameters(), o);
    Result r{0, 0, 0};
    double recent = 0;
    for (int s = 0; s < steps; s++) {
        const int64_t start = (s * batch) % 512;
        const Tensor xb = train_x.slice(0, start, start + batch);
        const Tensor yb = train_y.slice(0, start, start + batch).contiguous();
        sgd.zero_grad();
        Tensor loss = cross_entropy((*model)(xb), yb);
        loss.backward();
        sgd.step();
        const double l = loss.item();
        REQUIRE(std::isfinite(l));
        if (s == 0) r.first_loss = l;
        if (s >= steps - 5) recent += l / 5;
    }
    r.last_loss = recent;
    r.test_accuracy = accuracy(*model, test_x, test_y);
    return r;
}

}  // namespace

TEST_CASE("baseline CNN learns a generated image problem on omp", "[integration][omp]") {
    const Result r = train(CpuKernels::omp, 48);
    INFO("first loss " << r.first_loss << ", mean of last 5 " << r.last_loss << ", test accuracy " << r.test_accuracy);
    // The first loss is near ln 4 = 1.39 (uniform guesses); chance accuracy is 0.25.
    REQUIRE(r.first_loss > 1.2);
    REQUIRE(r.last_loss < 0.4 * r.first_loss);
    REQUIRE(r.test_accuracy > 0.8);
}

TEST_CASE("baseline CNN learns a generated image problem on naive", "[integration][naive][slow]") {
    const Result r = train(CpuKernels::naive, 48);
    INFO("first loss " << r.first_loss << ", mean of last 5 " << r.last_loss << ", test accuracy " << r.test_accuracy);
    REQUIRE(r.last_loss < 0.4 * r.first_loss);
    REQUIRE(r.test_accuracy > 0.8);
}
