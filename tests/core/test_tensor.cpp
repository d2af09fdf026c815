// Tensor core: creation, dtypes, conversion, element access, printing, memory layout and views.
#include "support/catch.h"

#include <algorithm>

#include <cmath>
#include <cstdint>
#include <sstream>

#include "dyad/dyad.h"
#include "lib/tensor/impl.h"
#include "support/compare.h"

using namespace dyad;
using test::AllClose;
using test::values;

TEST_CASE("creation functions give the requested shape, dtype and values", "[tensor]") {
    const Tensor z = Tensor::zeros({2, 3});
    REQUIRE(z.shape() == Shape{2, 3});
    REQUIRE(z.dtype() == DType::float32);
    REQUIRE(z.device() == Device::cpu());
    REQUIRE(z.numel() == 6);
    REQUIRE(z.dim() == 2);
    REQUIRE(z.is_contiguous());
    REQUIRE(z.strides() == std::vector<int64_t>{3, 1});
    REQUIRE_THAT(values(z), AllClose(std::vector<double>(6, 0.0)));
    REQUIRE_THAT(values(Tensor::ones({4}, DType::int32)), AllClose(std::vector<double>(4, 1.0)));
    REQUIRE_THAT(values(Tensor::full({2, 2}, -2.5, DType::float64)), AllClose(std::vector<double>(4, -2.5)));
    REQUIRE_THAT(values(Tensor::full({3}, 200, DType::uint8)), AllClose(std::vector<double>(3, 200.0)));
    REQUIRE(Tensor::empty({0, 5}).numel() == 0);
}

TEST_CASE("arange counts up and down by its step", "[tensor]") {
    REQUIRE_THAT(values(Tensor::arange(0, 5)), AllClose(std::vector<double>{0, 1, 2, 3, 4}));
    REQUIRE_THAT(values(Tensor::arange(1, 2, 0.25)), AllClose(std::vector<double>{1, 1.25, 1.5, 1.75}));
    REQUIRE_THAT(values(Tensor::arange(3, 0, -1, DType::int32)), AllClose(std::vector<double>{3, 2, 1}));
    REQUIRE(Tensor::arange(2, 2).numel() == 0);
}

TEST_CASE("from_vector copies row-major data for every dtype", "[tensor]") {
    const Tensor f = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(f.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
    const Tensor d = Tensor::from_vector(std::vector<double>{0.5, -1}, {2});
    REQUIRE(d.dtype() == DType::float64);
    const Tensor i = Tensor::from_vector(std::vector<int32_t>{7, -8}, {2, 1});
    REQUIRE(i.dtype() == DType::int32);
    REQUIRE(i.to_vector<int32_t>() == std::vector<int32_t>{7, -8});
    const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 255}, {2});
    REQUIRE(u.to_vector<uint8_t>() == std::vector<uint8_t>{0, 255});
}

TEST_CASE("dtype sizes and names", "[tensor]") {
    REQUIRE(dtype_size(DType::float32) == 4);
    REQUIRE(dtype_size(DType::float64) == 8);
    REQUIRE(dtype_size(DType::int32) == 4);
    REQUIRE(dtype_size(DType::uint8) == 1);
    REQUIRE(std::string(dtype_name(DType::uint8)) == "uint8");
    REQUIRE(is_floating(DType::float64));
    REQUIRE_FALSE(is_floating(DType::int32));
}

TEST_CASE("CPU memory is 64-byte aligned", "[tensor]") {
    for (int64_t n : {1, 3, 17, 1000, 4097}) {
        for (DType dt : {DType::float32, DType::float64, DType::uint8}) {
            const Tensor t = Tensor::empty({n}, dt);
            REQUIRE(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
        }
    }
}

TEST_CASE("randn and rand are reproducible from manual_seed", "[tensor][random]") {
    manual_seed(42);
    const auto a = Tensor::randn({1000}).to_vector<float>();
    const auto u = Tensor::rand({1000}, DType::float64).to_vector<double>();
    manual_seed(42);
    REQUIRE(Tensor::randn({1000}).to_vector<float>() == a);
    REQUIRE(Tensor::rand({1000}, DType::float64).to_vector<double>() == u);
    manual_seed(43);
    REQUIRE(Tensor::randn({1000}).to_vector<float>() != a);
}

TEST_CASE("randn and rand have the right distribution", "[tensor][random]") {
    manual_seed(7);
    const auto n = Tensor::randn({100000}, DType::float64).to_vector<double>();
    double mean = 0, var = 0;
    for (double v : n) mean += v;
    mean /= double(n.size());
    for (double v : n) var += (v - mean) * (v - mean);
    var /= double(n.size());
    // Standard errors for 1e5 samples: mean 0.003, variance 0.0045; 5 sigma bounds.
    REQUIRE(std::abs(mean) < 0.016);
    REQUIRE(std::abs(var - 1.0) < 0.023);
    const auto u = Tensor::rand({100000}, DType::float64).to_vector<double>();
    double umin = 1, umax = 0, umean = 0;
    for (double v : u) umin = std::min(umin, v), umax = std::max(umax, v), umean += v;
    umean /= double(u.size());
    REQUIRE(umin >= 0.0);
    REQUIRE(umax < 1.0);
    REQUIRE(std::abs(umean - 0.5) < 0.005);  // standard error 0.0009
}

TEST_CASE("to(dtype) converts values, truncating toward zero for integers", "[tensor]") {
    const Tensor f = Tensor::from_vector(std::vector<float>{-1.75f, 0.5f, 2.9f, 255.f}, {4});
    REQUIRE(f.to(DType::int32).to_vector<int32_t>() == std::vector<int32_t>{-1, 0, 2, 255});
    REQUIRE(f.to(DType::float64).to_vector<double>() == std::vector<double>{-1.75, 0.5, 2.9f, 255});
    const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 128, 255}, {3});
    REQUIRE(u.to(DType::float32).to_vector<float>() == std::vector<float>{0, 128, 255});
    REQUIRE(f.to(DType::float32).is_same(f));  // same dtype: no copy
}

TEST_CASE("item returns the single element", "[tensor]") {
    REQUIRE(Tensor::full({1, 1}, 3.5).item() == 3.5);
    REQUIRE(Tensor::full({}, 7, DType::int32).item() == 7.0);
    REQUIRE(sum(Tensor::ones({4, 5})).item() == 20.0);
}

TEST_CASE("clone and contiguous copy, but contiguous of a contiguous tensor does not", "[tensor]") {
    const Tensor a = Tensor::arange(0, 6).reshape({2, 3});
    REQUIRE(a.contiguous().is_same(a));
    const Tensor c = a.clone();
    REQUIRE_FALSE(c.impl()->storage == a.impl()->storage);
    REQUIRE(c.to_vector<float>() == a.to_vector<float>());
    const Tensor t = a.t();
    REQUIRE_FALSE(t.is_contiguous());
    const Tensor tc = t.contiguous();
    REQUIRE(tc.is_contiguous());
    REQUIRE(tc.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("printing shows values, shape, dtype and device", "[tensor]") {
    std::ostringstream os;
    os << Tensor::from_vector(std::vector<float>{1, 2.5f, -3, 4}, {2, 2});
    const std::string s = os.str();
    REQUIRE(s.find("2.5000") != std::string::npos);
    REQUIRE(s.find("-3.0000") != std::string::npos);
    REQUIRE(s.find("shape=(2, 2)") != std::string::npos);
    REQUIRE(s.find("dtype=float32") != std::string::npos);
    REQUIRE(s.find("device=cpu") != std::string::npos);

    std::ostringstream big;
    big << Tensor::zeros({100, 100}, DType::int32);
    REQUIRE(big.str().find("...") != std::string::npos);  // summarised
    REQUIRE(big.str().size() < 2000);

    std::ostringstream undef;
    undef << Tensor();
    REQUIRE(undef.str() == "tensor(undefined)");
}

TEST_CASE("in-place fill_, copy_, add_ and mul_", "[tensor]") {
    Tensor a = Tensor::zeros({2, 3});
    a.fill_(2);
    REQUIRE_THAT(values(a), AllClose(std::vector<double>(6, 2.0)));
    a.add_(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}), 2.0);  // broadcast row
    REQUIRE_THAT(values(a), AllClose(std::vector<double>{4, 6, 8, 4, 6, 8}));
    a.mul_(0.5);
    REQUIRE_THAT(values(a), AllClose(std::vector<double>{2, 3, 4, 2, 3, 4}));
    a.copy_(Tensor::from_vector(std::vector<int32_t>{9, 8}, {2, 1}));  // broadcast + convert
    REQUIRE_THAT(values(a), AllClose(std::vector<double>{9, 9, 9, 8, 8, 8}));
    // Through a view: only the viewed elements change.
    Tensor b = Tensor::zeros({3, 4});
    b.slice(1, 1, 3).fill_(5);
    REQUIRE_THAT(values(b), AllClose(std::vector<double>{0, 5, 5, 0, 0, 5, 5, 0, 0, 5, 5, 0}));
}

TEST_CASE("in-place updates from an overlapping view read the old values", "[tensor]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard g(k);
        Tensor x = Tensor::arange(0, 40000).reshape({200, 200});
        const Tensor expected = add(x, x.t());
        x.add_(x.t());
        REQUIRE(values(x) == values(expected));
        Tensor y = Tensor::arange(0, 9).reshape({3, 3});
        y.copy_(y.t());
        REQUIRE(values(y) == std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8});
        Tensor z = Tensor::arange(0, 4);
        z.add_(z);  // the identical view is safe without a copy
        REQUIRE(values(z) == std::vector<double>{0, 2, 4, 6});
    }
}

TEST_CASE("cuda queries answer without a GPU and never crash", "[tensor][device]") {
    REQUIRE(cuda_device_count() >= 0);
    REQUIRE(cuda_available() == (cuda_device_count() > 0));
    if (!cuda_available()) {
        REQUIRE_THROWS_AS(cuda_device_name(0), Error);
        REQUIRE_THROWS_WITH(Tensor::zeros({2}, DType::float32, Device::cuda()), Catch::Contains("cuda:0"));
    }
    synchronize();  // a no-op without a GPU
    REQUIRE(Device::cuda(1).str() == "cuda:1");
    REQUIRE(Device::cpu() != Device::cuda());
}

TEST_CASE("CPU kernel setting is process-wide and scoped by the guard", "[tensor][device]") {
    REQUIRE(cpu_kernels() == CpuKernels::omp);  // the default
    {
        CpuKernelsGuard g(CpuKernels::naive);
        REQUIRE(cpu_kernels() == CpuKernels::naive);
    }
    REQUIRE(cpu_kernels() == CpuKernels::omp);
    REQUIRE(num_threads() >= 1);
}

TEST_CASE("large host blocks are cached and reused by size", "[tensor]") {
    empty_host_cache();
    const HostCacheStats before = host_cache_stats();
    const void* first;
    {
        Tensor a = Tensor::empty({1 << 18});  // 1 MiB
        first = a.data<float>();
    }
    REQUIRE(host_cache_stats().cached_bytes == size_t(1) << 20);
    {
        Tensor b = Tensor::zeros({1 << 18});
        REQUIRE(b.data<float>() == first);  // the same block again
        REQUIRE(host_cache_stats().hits == before.hits + 1);
        REQUIRE(host_cache_stats().cached_bytes == 0);
        const std::vector<float> v = b.to_vector<float>();
        REQUIRE(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.f; }));  // zeros() still zeroes
    }
    {
        Tensor small = Tensor::empty({16});  // small blocks are not cached
    }
    REQUIRE(host_cache_stats().cached_bytes == size_t(1) << 20);
    empty_host_cache();
    REQUIRE(host_cache_stats().cached_bytes == 0);
    set_host_cache_limit(0);
    { Tensor c = Tensor::empty({1 << 18}); }
    REQUIRE(host_cache_stats().cached_bytes == 0);  // disabled: freed at once
    set_host_cache_limit(size_t(1) << 30);
}

// ---------------------------------------------------------------------------- int64
TEST_CASE("int64: size, name, from_vector, to_vector, item and printing keep every bit", "[tensor]") {
    REQUIRE(dtype_size(DType::int64) == 8);
    REQUIRE(std::string(dtype_name(DType::int64)) == "int64");
    REQUIRE_FALSE(is_floating(DType::int64));
    REQUIRE(dtype_of<int64_t>() == DType::int64);
    // Values beyond 2^53 (not representable in a double) and the extremes.
    const std::vector<int64_t> v = {0, -1, (int64_t(1) << 53) + 1, INT64_MAX, INT64_MIN, 5};
    const Tensor t = Tensor::from_vector(v, {2, 3});
    REQUIRE(t.dtype() == DType::int64);
    REQUIRE(t.to_vector<int64_t>() == v);
    REQUIRE(t.t().contiguous().to_vector<int64_t>() == std::vector<int64_t>{v[0], v[3], v[1], v[4], v[2], v[5]});
    REQUIRE(Tensor::full({}, -7, DType::int64).item() == -7.0);
    REQUIRE_THROWS_WITH(t.to_vector<int32_t>(), Catch::Contains("int64") && Catch::Contains("int32"));
    std::ostringstream os;
    os << t;
    REQUIRE(os.str().find("9007199254740993") != std::string::npos);  // 2^53 + 1, exactly
    REQUIRE(os.str().find("-9223372036854775808") != std::string::npos);
    REQUIRE(os.str().find("dtype=int64") != std::string::npos);
    REQUIRE_THAT(values(Tensor::arange(5, 0, -2, DType::int64)), AllClose(std::vector<double>{5, 3, 1}));
}

TEST_CASE("int64 converts to and from every dtype, on both CPU kernel sets", "[tensor]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor f = Tensor::from_vector(std::vector<float>{-1.75f, 0.5f, 2.9f, 255.f, 3e9f}, {5});
        // Float to integer truncates toward zero; 3e9 does not fit int32 but fits int64.
        REQUIRE(f.to(DType::int64).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 2, 255, 3000000000});
        const Tensor big = Tensor::from_vector(std::vector<int64_t>{-3, 40, (int64_t(1) << 40) + 7, 255}, {4});
        REQUIRE(big.to(DType::float64).to_vector<double>() == std::vector<double>{-3, 40, 1099511627783.0, 255});
        REQUIRE(big.to(DType::float32).to_vector<float>() == std::vector<float>{-3, 40, 1099511627776.f, 255});
        // Narrowing integer conversions keep the low bits, as static_cast does.
        REQUIRE(big.to(DType::int32).to_vector<int32_t>() == std::vector<int32_t>{-3, 40, 7, 255});
        REQUIRE(big.to(DType::uint8).to_vector<uint8_t>() == std::vector<uint8_t>{253, 40, 7, 255});
        const Tensor i = Tensor::from_vector(std::vector<int32_t>{INT32_MIN, -1, INT32_MAX}, {3});
        REQUIRE(i.to(DType::int64).to_vector<int64_t>() == std::vector<int64_t>{INT32_MIN, -1, INT32_MAX});
        const Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 200, 255}, {3});
        REQUIRE(u.to(DType::int64).to_vector<int64_t>() == std::vector<int64_t>{0, 200, 255});
        // A strided source, and fill_ / copy_ into int64.
        REQUIRE(big.slice(0, 0, 4, 2).to(DType::float64).to_vector<double>() ==
                std::vector<double>{-3, 1099511627783.0});
        Tensor z = Tensor::zeros({2, 2}, DType::int64);
        REQUIRE(z.to_vector<int64_t>() == std::vector<int64_t>(4, 0));
        z.fill_(-5);
        REQUIRE(z.to_vector<int64_t>() == std::vector<int64_t>(4, -5));
        z.copy_(Tensor::from_vector(std::vector<float>{1.5f, -2.5f}, {2}));  // broadcast + convert
        REQUIRE(z.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 1, -2});
    }
}

// ---------------------------------------------------------------------------- from_blob
TEST_CASE("from_blob wraps the caller's memory: writes show on both sides, no copy", "[tensor]") {
    std::vector<float> buf = {1, 2, 3, 4, 5, 6};
    Tensor t = Tensor::from_blob(buf.data(), {2, 3}, DType::float32);
    REQUIRE(t.shape() == Shape{2, 3});
    REQUIRE(t.is_contiguous());
    REQUIRE(t.device() == Device::cpu());
    REQUIRE(t.data<float>() == buf.data());
    REQUIRE(t.to_vector<float>() == buf);
    buf[4] = -50;  // the caller writes: the tensor sees it
    REQUIRE(t.to_vector<float>()[4] == -50);
    t.slice(1, 1, 3).fill_(9);  // dyad writes through a view: the buffer sees it
    REQUIRE(buf == std::vector<float>{1, 9, 9, 4, 9, 9});
    t.mul_(2);
    REQUIRE(buf == std::vector<float>{2, 18, 18, 8, 18, 18});
    // Ops make new tensors; the buffer is only read.
    const Tensor y = add(t, 1.0);
    REQUIRE(y.data<float>() != buf.data());
    REQUIRE(buf == std::vector<float>{2, 18, 18, 8, 18, 18});
    // Autograd works on a blob like on any leaf.
    Tensor w = Tensor::from_blob(buf.data(), {6}, DType::float32).requires_grad_();
    sum(mul(w, w)).backward();
    REQUIRE(w.grad().to_vector<float>() == std::vector<float>{4, 36, 36, 16, 36, 36});

    std::vector<int64_t> ids = {7, -8, 9};
    const Tensor it = Tensor::from_blob(ids.data(), {3}, DType::int64);
    REQUIRE(it.to_vector<int64_t>() == ids);
}

TEST_CASE("from_blob with strides views the caller's layout", "[tensor]") {
    // A column-major 2x3 matrix: element (i, j) at i + 2 * j.
    std::vector<double> buf = {1, 4, 2, 5, 3, 6};
    const Tensor t = Tensor::from_blob(buf.data(), {2, 3}, {1, 2}, DType::float64);
    REQUIRE_FALSE(t.is_contiguous());
    REQUIRE(t.contiguous().to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
    // Every other element (stride 2), and a broadcast row (stride 0).
    std::vector<int32_t> ints = {10, 0, 11, 0, 12};
    REQUIRE(Tensor::from_blob(ints.data(), {3}, {2}, DType::int32).to_vector<int32_t>() ==
            std::vector<int32_t>{10, 11, 12});
    REQUIRE(Tensor::from_blob(ints.data(), {2, 3}, {0, 2}, DType::int32).to_vector<int32_t>() ==
            std::vector<int32_t>{10, 11, 12, 10, 11, 12});
}

TEST_CASE("from_blob's deleter runs once, when the last handle goes", "[tensor]") {
    int calls = 0;
    void* freed = nullptr;
    auto* mem = new float[12]();
    {
        Tensor a = Tensor::from_blob(mem, {3, 4}, DType::float32, Device::cpu(), [&](void* p) {
            calls++;
            freed = p;
            delete[] static_cast<float*>(p);
        });
        Tensor view = a.slice(0, 1, 3).t();  // a view keeps the memory alive
        Tensor copy = a;                     // so does another handle
        a = Tensor();
        REQUIRE(calls == 0);
        copy = Tensor();
        REQUIRE(calls == 0);
        view.fill_(1);
        REQUIRE(mem[4] == 1.0f);
        REQUIRE(mem[0] == 0.0f);
    }
    REQUIRE(calls == 1);
    REQUIRE(freed == mem);
    // Without a deleter nothing is freed: the caller's buffer outlives the tensor untouched.
    std::vector<uint8_t> keep = {1, 2, 3};
    { Tensor::from_blob(keep.data(), {3}, DType::uint8).fill_(4); }
    REQUIRE(keep == std::vector<uint8_t>{4, 4, 4});
    // A deleter that throws is reported, never thrown out of a destructor.
    {
        Tensor::from_blob(keep.data(), {3}, DType::uint8, Device::cpu(), [](void*) { throw Error("no"); });
    }
    REQUIRE(keep == std::vector<uint8_t>{4, 4, 4});
}

TEST_CASE("from_blob argument errors name the problem and never call the deleter", "[tensor][errors]") {
    using Catch::Contains;
    int calls = 0;
    auto count = [&](void*) { calls++; };
    std::vector<float> buf(8);
    REQUIRE_THROWS_WITH(Tensor::from_blob(nullptr, {2}, DType::float32, Device::cpu(), count),
                        Contains("from_blob") && Contains("null") && Contains("(2)"));
    REQUIRE_THROWS_WITH(Tensor::from_blob(buf.data(), {2, -1}, DType::float32, Device::cpu(), count),
                        Contains("from_blob") && Contains("negative size"));
    REQUIRE_THROWS_WITH(
        Tensor::from_blob(reinterpret_cast<char*>(buf.data()) + 2, {2}, DType::float32, Device::cpu(), count),
        Contains("from_blob") && Contains("aligned") && Contains("4-byte"));
    REQUIRE_THROWS_WITH(Tensor::from_blob(buf.data(), {2, 2}, {2, -1}, DType::float32, Device::cpu(), count),
                        Contains("from_blob") && Contains("stride -1") && Contains("negative"));
    REQUIRE_THROWS_WITH(Tensor::from_blob(buf.data(), {2, 2}, {1}, DType::float32, Device::cpu(), count),
                        Contains("from_blob") && Contains("1 strides") && Contains("2 dims"));
    if (!cuda_available())
        REQUIRE_THROWS_WITH(Tensor::from_blob(buf.data(), {2}, DType::float32, Device::cuda(), count),
                            Contains("from_blob") && Contains("cuda:0"));
    REQUIRE(calls == 0);
    // No elements: a null pointer is fine.
    REQUIRE(Tensor::from_blob(nullptr, {0, 3}, DType::float32).numel() == 0);
}
