// Memory formats (tensor.h): channels_last (NHWC) tensors, their detection and conversion (differentiable,
// gradient-checked in float64), and every 4-D op taking a channels_last input: the same values and input
// gradients as from the NCHW input, bit for bit, on naive and omp, and the result in the input's format.
#include "support/catch.h"

#include <functional>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/memory_format_cases.h"
#include "support/random.h"

using namespace dyad;

namespace {

Tensor channels_last(const Tensor& x) { return x.contiguous(MemoryFormat::channels_last); }

}  // namespace

TEST_CASE("channels_last tensors: strides, detection and conversion", "[tensor][memory_format]") {
    const Tensor x = test::random_tensor({2, 3, 4, 5}, 1);
    CHECK(x.memory_format() == MemoryFormat::contiguous);
    CHECK(x.is_contiguous(MemoryFormat::contiguous));
    CHECK(!x.is_contiguous(MemoryFormat::channels_last));

    const Tensor y = channels_last(x);
    CHECK(y.shape() == x.shape());
    CHECK(y.strides() == std::vector<int64_t>{4 * 5 * 3, 1, 5 * 3, 3});  // N, C, H, W over NHWC memory
    CHECK(y.memory_format() == MemoryFormat::channels_last);
    CHECK(y.is_contiguous(MemoryFormat::channels_last));
    CHECK(!y.is_contiguous());
    CHECK(y.to_vector<float>() == x.to_vector<float>());  // the same elements at the same indices
    // In memory: the three channels of pixel (0, 0, 0) first.
    const float* p = y.data<float>();
    for (int64_t c = 0; c < 3; c++) CHECK(p[c] == x.select(0, 0).select(0, c).select(0, 0).select(0, 0).item());
    CHECK(y.contiguous(MemoryFormat::channels_last).is_same(y));  // nothing to do
    CHECK(y.contiguous().is_contiguous());
    CHECK(y.contiguous().to_vector<float>() == x.to_vector<float>());
    CHECK(std::string(memory_format_name(y.memory_format())) == "channels_last");

    // One channel, or 1x1 images: dense in both formats, reported contiguous.
    const Tensor one_channel = test::random_tensor({2, 1, 3, 3}, 2);
    CHECK(one_channel.is_contiguous(MemoryFormat::channels_last));
    CHECK(one_channel.memory_format() == MemoryFormat::contiguous);
    CHECK(channels_last(test::random_tensor({4, 8, 1, 1}, 3)).memory_format() == MemoryFormat::contiguous);
    // A transposed view is neither.
    CHECK(!x.transpose(2, 3).is_contiguous(MemoryFormat::channels_last));
    CHECK(x.transpose(2, 3).memory_format() == MemoryFormat::contiguous);

    REQUIRE_THROWS_WITH(test::random_tensor({3, 4, 5}, 4).contiguous(MemoryFormat::channels_last),
                        Catch::Contains("needs a 4-D (N, C, H, W) tensor, got (3, 4, 5)"));
    CHECK(!test::random_tensor({3, 4, 5}, 4).is_contiguous(MemoryFormat::channels_last));
}

TEST_CASE("contiguous(channels_last) is differentiable (float64)", "[tensor][memory_format][gradcheck]") {
    const Tensor x = test::random_tensor({2, 3, 4, 5}, 5, test::Layout::contiguous, DType::float64).requires_grad_();
    GradcheckResult r = gradcheck([](const std::vector<Tensor>& v) { return channels_last(v[0]); }, {x});
    INFO(r.report);
    CHECK(r.ok);
    // And back: from channels_last to contiguous.
    const Tensor y = channels_last(test::random_tensor({2, 3, 4, 5}, 6, test::Layout::contiguous, DType::float64))
                         .detach()
                         .requires_grad_();
    r = gradcheck([](const std::vector<Tensor>& v) { return v[0].contiguous() * 2.0; }, {y});
    INFO(r.report);
    CHECK(r.ok);
}

TEST_CASE("every 4-D op gives the same results from a channels_last input, in channels_last",
          "[tensor][memory_format]") {
    const std::vector<test::FormatOp> ops = test::memory_format_ops(Device::cpu());
    for (const CpuKernels kernels : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(kernels);
        for (const test::FormatOp& op : ops) {
            INFO(op.name << (kernels == CpuKernels::naive ? " on naive" : " on omp"));
            const Tensor x = test::random_tensor({2, 3, 7, 9}, 20).requires_grad_();
            const Tensor xl = channels_last(x.detach()).requires_grad_();
            const Tensor y = op.fn(x), yl = op.fn(xl);
            CHECK(yl.memory_format() == MemoryFormat::channels_last);
            test::require_identical(y, yl);
            // The same gradient reaches the input, whatever its layout.
            const Tensor g = test::random_tensor(y.shape(), 21);
            y.backward(g);
            yl.backward(g);
            test::require_identical(x.grad(), xl.grad());
        }
    }
}

TEST_CASE("a CNN trains the same from channels_last images", "[tensor][memory_format][nn]") {
    manual_seed(3);
    auto a = models::baseline_cnn(10, 3, 16);
    manual_seed(3);
    auto b = models::baseline_cnn(10, 3, 16);
    const Tensor x = test::random_tensor({4, 3, 16, 16}, 30);
    const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 7, 3, 0}, {4});
    const Tensor la = cross_entropy((*a)(x), labels), lb = cross_entropy((*b)(channels_last(x)), labels);
    test::require_identical(la, lb);
    la.backward();
    lb.backward();
    const auto pa = a->named_parameters(), pb = b->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); i++) {
        INFO(pa[i].first);
        test::require_identical(pa[i].second.grad(), pb[i].second.grad());
    }
}
