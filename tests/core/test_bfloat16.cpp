// bfloat16 (dyad/bfloat16.h, DType::bfloat16): the conversion against a reference rounding written another
// way (the nearer of the two neighbouring bfloat16 values in double arithmetic, ties to the even one) on
// every bfloat16 value, the midpoints between them and random floats; the special values; and the dtype
// through the tensor: conversion both ways on both CPU kernel sets, strided copies, fill, comparisons,
// where, printing, the gradient of a conversion (float32 master values behind bfloat16 copies),
// safetensors' BF16, and the clear error of an op that has no bfloat16 kernels (the ops that have them:
// tests/ops/bfloat16.cpp).
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/files.h"
#include "support/random.h"

using namespace dyad;

namespace {

float from_bits32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

uint32_t bits32(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// The reference: f's two bfloat16 neighbours are its bits truncated and the next value away from zero;
// the nearer in double wins, a tie goes to the one whose last kept bit is 0. Past the largest finite
// bfloat16 the rounding goes to infinity when f is at least halfway to 2^128 (IEEE's overflow rule).
uint16_t reference_round(float f) {
    const uint32_t u = bits32(f);
    const uint16_t down = uint16_t(u >> 16);
    if (std::isnan(f)) return down | 0x40;
    if ((u & 0xffff) == 0) return down;
    const uint16_t up = uint16_t(down + 1);  // away from zero: the magnitude grows by one unit
    const double lo = std::abs(double(from_bits32(uint32_t(down) << 16)));
    const double hi_bits = std::abs(double(from_bits32(uint32_t(up) << 16)));
    // Beyond the largest finite value `up` is infinity; the halfway point is then 2^128 - 2^119.
    const double hi = std::isinf(hi_bits) ? std::ldexp(1.0, 128) : hi_bits;
    const double a = std::abs(double(f));
    if (a - lo < hi - a) return down;
    if (a - lo > hi - a) return up;
    return (down & 1) ? up : down;
}

}  // namespace

TEST_CASE("bfloat16 rounds to nearest even, on every value, every midpoint and random floats", "[bfloat16]") {
    // Every bfloat16 value converts to float and back unchanged (NaN stays NaN).
    for (uint32_t b = 0; b < 0x10000; b++) {
        const bfloat16 h = bfloat16::from_bits(uint16_t(b));
        const float f = float(h);
        CHECK(bits32(f) == b << 16);  // widening is exact: the bits shifted
        const uint16_t back = bfloat16(f).bits;
        if (std::isnan(f))
            CHECK((std::isnan(float(bfloat16::from_bits(back))) && (back & 0x8000) == (b & 0x8000)));
        else
            CHECK(back == b);
        // The midpoint to the next bfloat16 and the floats on both sides of it.
        const uint32_t mid = (b << 16) | 0x8000;
        for (const uint32_t m : {mid, mid - 1, mid + 1}) {
            const float x = from_bits32(m);
            INFO("bits " << std::hex << m);
            if (std::isnan(x)) continue;
            CHECK(bfloat16(x).bits == reference_round(x));
        }
    }
    std::mt19937 gen(7);
    std::uniform_int_distribution<uint32_t> any;
    for (int i = 0; i < 200000; i++) {
        const float x = from_bits32(any(gen));
        if (std::isnan(x)) continue;
        CHECK(bfloat16(x).bits == reference_round(x));
    }
}

TEST_CASE("bfloat16 special values", "[bfloat16]") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(bfloat16(1.0f).bits == 0x3f80);
    CHECK(float(bfloat16(1.0f + 1.0f / 256)) == 1.0f);                       // a tie: to the even value
    CHECK(float(bfloat16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);          // a tie: up to the even value
    CHECK(float(bfloat16(1.0f + 1.0f / 256 + 1e-7f)) == 1.0f + 2.0f / 256);  // past the tie: up
    CHECK(float(bfloat16(3.140625f)) == 3.140625f);                          // exactly representable
    CHECK(bfloat16(-0.0f).bits == 0x8000);                                   // the sign of zero survives
    CHECK(float(bfloat16(inf)) == inf);
    CHECK(float(bfloat16(-inf)) == -inf);
    const float largest = float(bfloat16::from_bits(0x7f7f));  // 3.3895e38
    CHECK(float(bfloat16(largest)) == largest);
    CHECK(float(bfloat16(std::numeric_limits<float>::max())) == inf);  // beyond halfway to 2^128
    CHECK(std::isnan(float(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isnan(float(bfloat16(from_bits32(0x7f800001)))));  // a signalling NaN whose payload is all low
    const float tiny = from_bits32(0x00010000);                   // a subnormal bfloat16 holds exactly
    CHECK(float(bfloat16(tiny)) == tiny);
    CHECK(float(bfloat16(2.5)) == 2.5f);  // from double and integers, through float
    CHECK(float(bfloat16(-7)) == -7.0f);
    CHECK(int(bfloat16(-7.75f)) == -7);  // to an integer: truncation toward zero, as from float
}

TEST_CASE("bfloat16 tensors: conversion, copies, fill, comparisons and printing", "[bfloat16][tensor]") {
    CHECK(dtype_size(DType::bfloat16) == 2);
    CHECK(std::string(dtype_name(DType::bfloat16)) == "bfloat16");
    CHECK(is_floating(DType::bfloat16));
    const Tensor x = test::random_tensor({3, 5, 7}, 1) * 100.0;
    const std::vector<float> xv = x.to_vector<float>();
    for (const CpuKernels kernels : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(kernels);
        INFO(cpu_kernels_name(kernels));
        const Tensor h = x.to(DType::bfloat16);
        REQUIRE(h.dtype() == DType::bfloat16);
        const bfloat16* hp = h.data<bfloat16>();
        for (size_t i = 0; i < xv.size(); i++) REQUIRE(hp[i].bits == reference_round(xv[i]));
        // Back to float32 and float64: exact widening.
        const std::vector<float> back = h.to(DType::float32).to_vector<float>();
        for (size_t i = 0; i < xv.size(); i++) REQUIRE(back[i] == float(hp[i]));
        CHECK(h.to(DType::float64).to_vector<double>() == std::vector<double>(back.begin(), back.end()));
        // A strided copy (a transposed view made contiguous) moves the same bits.
        const Tensor t = h.transpose(0, 2).contiguous();
        CHECK(t.to(DType::float32).to_vector<float>() ==
              x.to(DType::bfloat16).to(DType::float32).transpose(0, 2).contiguous().to_vector<float>());
        // Integers convert through float.
        CHECK(Tensor::arange(-3, 4).to(DType::bfloat16).to(DType::int32).to_vector<int32_t>() ==
              std::vector<int32_t>{-3, -2, -1, 0, 1, 2, 3});
        // fill, item, comparisons and where in bfloat16.
        const Tensor f = Tensor::full({4}, 1.0 / 3.0, DType::bfloat16);
        CHECK(f.select(0, 2).item() == double(float(bfloat16(float(1.0 / 3.0)))));
        CHECK(test::values(lt(h, 0.0)) == test::values(lt(h.to(DType::float32), 0.0)));
        const Tensor w = where(gt(h, 0.0), h, Tensor::zeros({}, DType::bfloat16));
        REQUIRE(w.dtype() == DType::bfloat16);
        CHECK(test::values(w) == test::values(relu(h.to(DType::float32))));
    }
    CHECK_THAT(Tensor::full({2}, 1.5, DType::bfloat16).str(), Catch::Contains("bfloat16"));
}

TEST_CASE("bfloat16 copies of float32 master values pass gradients back in float32", "[bfloat16][autograd]") {
    // The mixed-precision pattern: a float32 parameter, its bfloat16 copy used in the computation, the
    // gradient arriving at the parameter in float32.
    const Tensor master = test::random_tensor({4, 6}, 2).requires_grad_();
    const Tensor half = master.to(DType::bfloat16);
    REQUIRE(half.requires_grad());
    const Tensor g = test::random_tensor({4, 6}, 3);
    // The bfloat16 value widened again; the seed rounds to bfloat16 on its way through the copy.
    half.to(DType::float32).backward(g);
    REQUIRE(master.grad().dtype() == DType::float32);
    CHECK(test::values(master.grad()) == test::values(g.to(DType::bfloat16).to(DType::float32)));
}

TEST_CASE("bfloat16 tensors save and load as safetensors BF16", "[bfloat16][io]") {
    const std::string path = test::output_path("bfloat16", "bf16.safetensors");
    const Tensor h = (test::random_tensor({5, 3}, 4) * 1000.0).to(DType::bfloat16);
    io::save_tensors(path, {{"h", h}});
    const nn::NamedTensors back = io::load_tensors(path);
    REQUIRE(back.size() == 1);
    REQUIRE(back[0].second.dtype() == DType::bfloat16);
    CHECK(test::values(back[0].second) == test::values(h));
    // The header names the type as PyTorch's safetensors writer does.
    CHECK(test::read_bytes(path).find("\"BF16\"") != std::string::npos);
}

TEST_CASE("an op without bfloat16 kernels says so", "[bfloat16][errors]") {
    const Tensor h = test::random_tensor({2, 3, 4, 4}, 5).to(DType::bfloat16);
    for (const CpuKernels kernels : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(kernels);
        REQUIRE_THROWS_WITH(log_softmax(h, 1), Catch::Contains("bfloat16 is not supported") &&
                                                   Catch::Contains("compute it in float32 (x.to(DType::float32))"));
        REQUIRE_THROWS_WITH(isfinite(h), Catch::Contains("bfloat16") && Catch::Contains("not supported"));
    }
}

TEST_CASE("parameters stay float32 or float64: a module or optimizer refuses bfloat16 ones", "[bfloat16][nn]") {
    auto model = models::baseline_cnn(10, 3, 16);
    REQUIRE_THROWS_WITH(model->to(DType::bfloat16), Catch::Contains("float32 or float64, got bfloat16"));
    CHECK(model->named_parameters().front().second.dtype() == DType::float32);  // nothing converted
    const Tensor p = Tensor::zeros({3}, DType::bfloat16).requires_grad_();
    REQUIRE_THROWS_WITH(optim::Sgd(nn::NamedTensors{{"p", p}}, optim::SgdOptions{}),
                        Catch::Contains("'p' must be float32 or float64, got bfloat16"));
}
