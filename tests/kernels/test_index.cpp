// Index family (gather, index_select, topk) on the CPU kernel sets: hand-checked values in naive and omp,
// repeated indices in backward, the tie and NaN rules of topk, float64 gradient checks, and errors (bad
// indices named with their position). Parity of every kernel set with naive and with an independent topk
// reference: tests/ops/index.cpp.
#include "support/catch.h"

#include <cmath>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/index_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::Layout;
using test::make;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kIndexTypes[] = {DType::int32, DType::int64};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Tensor ints(const std::vector<int64_t>& v, const Shape& shape, DType dtype = DType::int64) {
    return Tensor::from_vector(v, shape).to(dtype);
}

std::vector<int64_t> longs(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int64);
    return t.contiguous().to_vector<int64_t>();
}

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("gather: known values along each dim, int32 and int64 indices, strided x", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType it : kIndexTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " index " << dtype_name(it));
            const Tensor x = make({1, 2, 3, 4}, {2, 2}, DType::float32);
            // PyTorch's documented example: out[i][j] = x[i][index[i][j]].
            const Tensor g1 = gather(x, 1, ints({0, 0, 1, 0}, {2, 2}, it));
            REQUIRE(g1.shape() == Shape{2, 2});
            REQUIRE(g1.dtype() == DType::float32);
            REQUIRE(values(g1) == std::vector<double>{1, 1, 4, 3});
            // Along dim 0, with an index longer than x along dim and narrower in dim 1.
            REQUIRE(values(gather(x, 0, ints({1, 0, 1}, {3, 1}, it))) == std::vector<double>{3, 1, 3});
            REQUIRE(values(gather(x, -2, ints({1, 0, 0, 0}, {2, 2}, it))) == std::vector<double>{3, 2, 1, 2});
            // A transposed x: indices address the view, not the memory.
            REQUIRE(values(gather(x.t(), 1, ints({1, 1, 0, 1}, {2, 2}, it))) == std::vector<double>{3, 3, 2, 4});
            REQUIRE(gather(x, 1, ints({}, {2, 0}, it)).shape() == Shape{2, 0});
            const Tensor s = gather(Tensor::full({}, 2.5), 0, Tensor::zeros({}, it));
            REQUIRE(s.shape() == Shape{});
            REQUIRE(s.item() == 2.5);
        }
    }
}

TEST_CASE("index_select: known values, repeated and empty index, 0-d index", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType it : kIndexTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " index " << dtype_name(it));
            const Tensor x = Tensor::arange(0, 12).reshape({3, 4});
            const Tensor r = index_select(x, 0, ints({2, 0, 2}, {3}, it));
            REQUIRE(r.shape() == Shape{3, 4});
            REQUIRE(values(r) == std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
            REQUIRE(values(index_select(x, -1, ints({3, 1}, {2}, it))) == std::vector<double>{3, 1, 7, 5, 11, 9});
            REQUIRE(values(index_select(x.t(), 1, ints({1}, {1}, it))) == std::vector<double>{4, 5, 6, 7});
            REQUIRE(index_select(x, 1, ints({}, {0}, it)).shape() == Shape{3, 0});
            const Tensor one = index_select(x, 1, Tensor::full({}, 2, it));  // 0-d index: one position
            REQUIRE(one.shape() == Shape{3, 1});
            REQUIRE(values(one) == std::vector<double>{2, 6, 10});
        }
    }
}

TEST_CASE("gather and index_select gradients add up over repeated indices", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = Tensor::zeros({2, 3}).requires_grad_();
        gather(x, 1, ints({2, 2, 0, 1, 1, 1}, {2, 3})).backward(make({1, 2, 4, 8, 16, 32}, {2, 3}, DType::float32));
        REQUIRE(values(x.grad()) == std::vector<double>{4, 0, 3, 0, 56, 0});
        Tensor w = Tensor::zeros({4, 2}).requires_grad_();  // an embedding table
        index_select(w, 0, ints({3, 0, 3, 3}, {4}, DType::int32))
            .backward(make({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, DType::float32));
        REQUIRE(values(w.grad()) == std::vector<double>{3, 4, 0, 0, 0, 0, 1 + 5 + 7, 2 + 6 + 8});
        // A gather of part of x: the rest of the gradient stays 0.
        Tensor y = Tensor::zeros({3, 3}).requires_grad_();
        sum(gather(y, 0, ints({2}, {1, 1}))).backward();
        REQUIRE(values(y.grad()) == std::vector<double>{0, 0, 0, 0, 0, 0, 1, 0, 0});
    }
}

TEST_CASE("topk: known values, ties by position, NaN as the largest, both directions", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor x = make({3, 1, 4, 1, 5, 9, 2, 6}, {8}, dt);
            TopK t = topk(x, 3);
            REQUIRE(t.values.shape() == Shape{3});
            REQUIRE(t.values.dtype() == dt);
            REQUIRE(t.indices.dtype() == DType::int64);
            REQUIRE(values(t.values) == std::vector<double>{9, 6, 5});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{5, 7, 4});
            t = topk(x, 3, 0, /*largest=*/false);
            REQUIRE(values(t.values) == std::vector<double>{1, 1, 2});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 3, 6});  // the tie: lower position first
            // NaN ranks above +inf: first among the largest, last among the smallest; -0 ties with +0.
            const Tensor n = make({0, kNaN, -kInf, kInf, -0.0, kNaN}, {6}, dt);
            t = topk(n, 4);
            REQUIRE_THAT(values(t.values), AllClose(std::vector<double>{kNaN, kNaN, kInf, 0}));
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 5, 3, 0});
            t = topk(n, 6, -1, false);
            REQUIRE_THAT(values(t.values), AllClose(std::vector<double>{-kInf, 0, -0.0, kInf, kNaN, kNaN}));
            REQUIRE(longs(t.indices) == std::vector<int64_t>{2, 0, 4, 3, 1, 5});
            // Along dim 0 of a matrix, and the edge values of k.
            const Tensor m = make({1, 8, 5, 7, 2, 5}, {3, 2}, dt);
            t = topk(m, 2, 0);
            REQUIRE(t.values.shape() == Shape{2, 2});
            REQUIRE(values(t.values) == std::vector<double>{5, 8, 2, 7});
            REQUIRE(longs(t.indices) == std::vector<int64_t>{1, 0, 2, 1});
            REQUIRE(topk(m, 0, 1).values.shape() == Shape{3, 0});
            REQUIRE(values(topk(m, 2, 1).values) == std::vector<double>{8, 1, 7, 5, 5, 2});
            REQUIRE(values(topk(make({4}, {}, dt), 1).values) == std::vector<double>{4});
            REQUIRE(topk(make({4}, {}, dt), 1).values.shape() == Shape{});
            // sorted = false returns the same (sorted) order.
            REQUIRE(longs(topk(x, 4, 0, true, false).indices) == longs(topk(x, 4).indices));
        }
    }
}

TEST_CASE("topk gradient goes to the selected positions", "[index][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        Tensor x = make({3, 1, 4, 1, 5, 9}, {2, 3}, DType::float32).requires_grad_();
        topk(x, 2, 1).values.backward(make({10, 20, 30, 40}, {2, 2}, DType::float32));
        REQUIRE(values(x.grad()) == std::vector<double>{20, 0, 10, 0, 40, 30});
        Tensor y = make({2, 2, 2}, {3}, DType::float32).requires_grad_();
        sum(topk(y, 2, 0, false).values).backward();  // ties: the first two positions
        REQUIRE(values(y.grad()) == std::vector<double>{1, 1, 0});
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("gather, index_select and topk: gradcheck", "[index][gradcheck]") {
    const Tensor x = test::random_tensor({3, 4, 5}, 71, Layout::contiguous, DType::float64).requires_grad_();
    for (DType it : kIndexTypes) {
        INFO(dtype_name(it));
        const Tensor gi = test::index_tensor({3, 6, 2}, 4, 72, it);  // repeats along dim 1, narrower in dim 2
        GradcheckResult r = gradcheck([&](const std::vector<Tensor>& v) { return gather(v[0], 1, gi); }, {x});
        INFO("gather: " << r.report);
        REQUIRE(r.ok);
        // x used twice, once through the gather: a non-linear function of gathered values.
        r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return gather(v[0], -1, test::index_tensor({3, 4, 7}, 5, 73, it)) * sum(v[0]);
            },
            {x});
        INFO("gather * sum: " << r.report);
        REQUIRE(r.ok);
        const Tensor si = ints({4, 0, 4, 2, 4}, {5}, it);
        r = gradcheck([&](const std::vector<Tensor>& v) { return index_select(v[0], 2, si); }, {x});
        INFO("index_select: " << r.report);
        REQUIRE(r.ok);
    }
    // topk needs distinct values (no tie within the finite-difference step): a shuffled ramp.
    std::vector<double> ramp(60);
    for (size_t i = 0; i < ramp.size(); i++) ramp[i] = 0.01 * double((i * 37) % 60) - 0.3;
    const Tensor xr = Tensor::from_vector(ramp, {3, 4, 5}).requires_grad_();
    for (int64_t dim : {0, 1, 2}) {
        for (bool largest : {true, false}) {
            const GradcheckResult r =
                gradcheck([&](const std::vector<Tensor>& v) { return topk(v[0], 2, dim, largest).values; }, {xr});
            INFO("topk dim " << dim << " largest " << largest << ": " << r.report);
            REQUIRE(r.ok);
        }
    }
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("index argument errors name the op, the values and the position", "[index][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({3, 4});
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 5, 1, 2}, {2, 2})),
                        Contains("gather: index 5 at position (0, 1) is out of range [0, 4) for dim 1 of x (3, 4)"));
    REQUIRE_THROWS_WITH(gather(x, 0, ints({0, -1}, {1, 2}, DType::int32)),
                        Contains("gather: index -1 at position (0, 1)") && Contains("[0, 3)"));
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0}, {1})),
                        Contains("gather") && Contains("(1)") && Contains("as many dims"));
    REQUIRE_THROWS_WITH(gather(x, 1, ints({0, 0, 0, 0}, {4, 1})),
                        Contains("gather: index (4, 1) is larger than x (3, 4) in dim 0"));
    REQUIRE_THROWS_WITH(gather(x, 2, ints({0}, {1, 1})), Contains("gather: dim 2 is out of range"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor::zeros({3, 4})),
                        Contains("gather: index must be int32 or int64") && Contains("float32"));
    REQUIRE_THROWS_WITH(gather(Tensor::zeros({3, 4}, DType::int64), 1, ints({0}, {1, 1})),
                        Contains("gather") && Contains("int64"));
    REQUIRE_THROWS_WITH(gather(x, 1, Tensor()), Contains("gather") && Contains("index") && Contains("undefined"));

    REQUIRE_THROWS_WITH(index_select(x, 1, ints({0, 3, 4}, {3})),
                        Contains("index_select: index 4 at position 2 is out of range [0, 4) for dim 1 of x (3, 4)"));
    REQUIRE_THROWS_WITH(index_select(x, 0, ints({int64_t(1) << 40}, {1})), Contains("index 1099511627776"));
    REQUIRE_THROWS_WITH(index_select(x, 0, ints({0, 1}, {1, 2})),
                        Contains("index_select: index must be 1-D") && Contains("(1, 2)"));
    REQUIRE_THROWS_WITH(index_select(x, -3, ints({0}, {1})), Contains("index_select: dim -3"));
    REQUIRE_THROWS_WITH(index_select(x, 0, Tensor::zeros({2}, DType::uint8)),
                        Contains("index_select") && Contains("uint8"));

    REQUIRE_THROWS_WITH(topk(x, 5), Contains("topk: k = 5 is out of range [0, 4]") && Contains("(3, 4)"));
    REQUIRE_THROWS_WITH(topk(x, -1, 0), Contains("topk: k = -1"));
    REQUIRE_THROWS_WITH(topk(x, 1, 2), Contains("topk: dim 2 is out of range"));
    REQUIRE_THROWS_WITH(topk(Tensor::zeros({4}, DType::int32), 1), Contains("topk") && Contains("int32"));
    REQUIRE_THROWS_WITH(topk(Tensor::full({}, 1.0), 0), Contains("topk") && Contains("0-d"));
    // A failed call changes nothing: the index can be fixed and the op run again.
    REQUIRE(values(index_select(x + 1.0, 1, ints({0, 3}, {2}))) == std::vector<double>(6, 1.0));
}
