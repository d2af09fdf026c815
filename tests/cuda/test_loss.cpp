// CUDA cross-entropy labels: on a GPU the kernel checks them (reading them back first would make every
// step wait), so a label out of range is a fault recorded on the GPU and thrown at the next
// synchronisation, and the GPU stays usable. Parity of every kernel set with naive (softmax, log-softmax
// and cross-entropy): tests/ops/loss.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "support/random.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::kReduceRtol;
using test::naive_reference;

TEST_CASE("cuda cross_entropy with a label out of range throws at the next synchronisation", "[cuda][loss]") {
    using Catch::Contains;
    const Tensor x = gpu(test::random_tensor({4, 5}, 90));
    const Tensor bad = gpu(Tensor::from_vector(std::vector<int32_t>{0, 4, 5, 1}, {4}));
    // Queuing the op does not wait for the GPU; the fault is thrown by the next synchronisation, as a
    // dyad::Error naming the label, its index and the class count.
    Tensor loss = cross_entropy(x, bad);
    bool thrown = false;
    try {
        synchronize();
    } catch (const Error& e) {
        thrown = true;
        REQUIRE_THAT(std::string(e.what()), Contains("cross_entropy") && Contains("label 5") && Contains("index 2") &&
                                                Contains("out of range") && Contains("5 classes"));
    }
    REQUIRE(thrown);
    // The fault is cleared once thrown; the bad row made the loss NaN (its label was never read as an
    // index).
    REQUIRE(std::isnan(loss.item()));
    // A negative label, found when the loss is read.
    const Tensor negative = gpu(Tensor::from_vector(std::vector<int32_t>{0, 0, 0, -1}, {4}));
    REQUIRE_THROWS_WITH(cross_entropy(x, negative).item(),
                        Contains("label -1") && Contains("index 3") && Contains("out of range"));
    // The GPU stays usable: a good call afterwards matches naive, and nothing more is thrown.
    const Tensor good = Tensor::from_vector(std::vector<int32_t>{0, 4, 3, 1}, {4});
    const double ref = naive_reference([&] { return cross_entropy(cpu(x), good).item(); });
    REQUIRE(cross_entropy(x, gpu(good)).item() == Approx(ref).epsilon(kReduceRtol));
    REQUIRE_NOTHROW(synchronize());
}

TEST_CASE("cuda cross_entropy with a bad int64 label: a deferred fault with its full value", "[cuda][loss]") {
    const Tensor x = gpu(test::random_tensor({4, 5}, 91));
    const Tensor bad = gpu(Tensor::from_vector(std::vector<int64_t>{0, int64_t(1) << 33, 1, 2}, {4}));
    REQUIRE_THROWS_WITH(cross_entropy(x, bad).item(),
                        Catch::Contains("label 8589934592") && Catch::Contains("index 1"));
    REQUIRE_NOTHROW(synchronize());
}
