// dyad::dist on the ranks of an MPI job: ctest launches this program with `mpirun -np 2` and `-np 3`
// (--oversubscribe, one thread per rank), and once alone (one rank). Every rank runs every case; a failure
// on any rank fails the job. The values are chosen so that every rank knows the exact result: rank r holds
// (r + 1) * base, so the sum over N ranks is N (N + 1) / 2 * base, in exactly representable numbers.
#include "support/catch.h"

#include <cstdint>
#include <string>
#include <vector>

#include "dist/job.h"
#include "dyad/dist.h"
#include "dyad/dyad.h"

using namespace dyad;

using test::job;

TEST_CASE("dist: ranks, world size and local ranks are consistent", "[dist]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    REQUIRE(dist::initialized());
    REQUIRE(n >= 1);
    REQUIRE((r >= 0 && r < n));
    REQUIRE((dist::local_rank() >= 0 && dist::local_rank() < dist::local_size()));
    REQUIRE(dist::local_size() <= n);
    // Every rank counted once: the sum of the ranks over the job is n (n - 1) / 2, the ranks' maximum n - 1.
    REQUIRE(dist::all_reduce(double(r)) == double(n) * double(n - 1) / 2);
    REQUIRE(dist::all_reduce(double(r), dist::ReduceOp::max) == double(n - 1));
    REQUIRE(dist::all_reduce(double(r), dist::ReduceOp::min) == 0.0);
    REQUIRE(dist::all_reduce(1.0, dist::ReduceOp::mean) == 1.0);
    if (dist::mpi_built()) INFO("MPI build");
    dist::barrier();
}

TEST_CASE("dist: all_reduce sums, averages and takes extremes of every dtype in place", "[dist]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    const double tri = double(n) * double(n + 1) / 2;  // sum of (r + 1) over the ranks
    for (DType dt : {DType::float32, DType::float64, DType::int32, DType::int64}) {
        INFO(dtype_name(dt));
        // An odd size, with values up to 2^20 so that every sum is exact in float32.
        std::vector<double> base(1001);
        for (size_t i = 0; i < base.size(); i++) base[i] = double((i * 7919) % 2048) - 1000.0;
        auto mine = [&] {
            std::vector<double> v(base);
            for (double& e : v) e *= double(r + 1);
            return Tensor::from_vector(v, {7, 11, 13}).to(dt);
        };
        Tensor t = mine();
        dist::all_reduce(t);
        std::vector<double> want(base);
        for (double& e : want) e *= tri;
        REQUIRE(t.to(DType::float64).to_vector<double>() == want);
        REQUIRE(t.shape() == Shape{7, 11, 13});

        Tensor hi = mine();
        dist::all_reduce(hi, dist::ReduceOp::max);
        Tensor lo = mine();
        dist::all_reduce(lo, dist::ReduceOp::min);
        const std::vector<double> h = hi.to(DType::float64).to_vector<double>();
        const std::vector<double> l = lo.to(DType::float64).to_vector<double>();
        for (size_t i = 0; i < base.size(); i++) {
            REQUIRE(h[i] == (base[i] >= 0 ? base[i] * n : base[i]));
            REQUIRE(l[i] == (base[i] >= 0 ? base[i] : base[i] * n));
        }
        if (is_floating(dt)) {
            Tensor m = mine();
            dist::all_reduce(m, dist::ReduceOp::mean);
            std::vector<double> mean(base);
            for (double& e : mean) e *= tri / n;
            const std::vector<double> got = m.to(DType::float64).to_vector<double>();
            for (size_t i = 0; i < got.size(); i++)
                REQUIRE(got[i] == Approx(mean[i]).epsilon(dt == DType::float32 ? 1e-6 : 1e-15).margin(1e-6));
        } else {
            Tensor m = mine();
            REQUIRE_THROWS_WITH(dist::all_reduce(m, dist::ReduceOp::mean), Catch::Contains("mean of int"));
        }
    }
    Tensor empty = Tensor::zeros({0, 3});
    dist::all_reduce(empty);  // nothing to reduce, on every rank
    REQUIRE(empty.numel() == 0);
}

TEST_CASE("dist: broadcast gives every rank the root's tensor", "[dist]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    for (int root = 0; root < n; root++) {
        Tensor t = Tensor::full({5, 3}, double(r * 10 + 1), DType::float32);
        dist::broadcast(t, root);
        for (float v : t.to_vector<float>()) REQUIRE(v == float(root * 10 + 1));
    }
    Tensor t = Tensor::zeros({2});
    REQUIRE_THROWS_WITH(dist::broadcast(t, n), Catch::Contains("root " + std::to_string(n) + " is not a rank"));
}

TEST_CASE("dist: tensors that cannot be reduced, and ranks that disagree, are errors on every rank", "[dist]") {
    (void)job();
    const int n = dist::world_size(), r = dist::rank();
    Tensor strided = Tensor::zeros({4, 6}).transpose(0, 1);
    REQUIRE_THROWS_WITH(dist::all_reduce(strided), Catch::Contains("contiguous"));
    Tensor bytes = Tensor::zeros({3}, DType::uint8);
    REQUIRE_THROWS_WITH(dist::all_reduce(bytes), Catch::Contains("uint8"));
    Tensor undefined;
    REQUIRE_THROWS_WITH(dist::all_reduce(undefined), Catch::Contains("undefined"));
    if (n > 1) {
        // Rank 0 holds 4 elements, the others 5: every rank throws, naming the mismatch, and the job goes on.
        Tensor t = Tensor::zeros({r == 0 ? 4 : 5});
        REQUIRE_THROWS_WITH(dist::all_reduce(t), Catch::Contains("element counts differ"));
        Tensor d = Tensor::zeros({4}, r == 0 ? DType::float32 : DType::float64);
        REQUIRE_THROWS_WITH(dist::all_reduce(d), Catch::Contains("dtypes differ"));
        Tensor ok = Tensor::ones({4});
        dist::all_reduce(ok);
        for (float v : ok.to_vector<float>()) REQUIRE(v == float(n));
    }
}

TEST_CASE("dist: the collective timeout is settable and must be positive", "[dist]") {
    (void)job();
    const double before = dist::timeout();
    REQUIRE(before > 0);
    dist::set_timeout(12.5);
    REQUIRE(dist::timeout() == 12.5);
    REQUIRE_THROWS_WITH(dist::set_timeout(0), Catch::Contains("must be positive"));
    REQUIRE_THROWS_WITH(dist::set_timeout(-3), Catch::Contains("must be positive"));
    REQUIRE(dist::timeout() == 12.5);
    dist::set_timeout(before);
    // Collectives under the timeout complete as usual.
    REQUIRE(dist::all_reduce(1.0) == double(dist::world_size()));
}
