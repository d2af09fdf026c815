// all_close for tests: |actual - expected| <= atol + rtol * |expected|, element by element (NumPy's
// allclose). NaN equals NaN only when both are NaN at the same place. On failure the message gives the
// count of bad elements, the worst one (index, values, abs and rel error) and the first few pairs.
#pragma once
#include "support/catch.h"

#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "dyad/tensor.h"

namespace dyad::test {

template <typename T>
class AllCloseMatcher : public Catch::MatcherBase<std::vector<T>> {
public:
    explicit AllCloseMatcher(std::vector<T> expected) : expected_(std::move(expected)) {}
    AllCloseMatcher& rtol(double r) {
        rtol_ = r;
        return *this;
    }
    AllCloseMatcher& atol(double a) {
        atol_ = a;
        return *this;
    }

    bool match(const std::vector<T>& actual) const override {
        std::ostringstream os;
        if (actual.size() != expected_.size()) {
            os << "size " << actual.size() << " != expected size " << expected_.size();
            report_ = os.str();
            return false;
        }
        size_t bad = 0, worst = 0;
        double worst_err = -1;
        for (size_t i = 0; i < actual.size(); i++) {
            const double a = double(actual[i]), e = double(expected_[i]);
            bool ok;
            double err;
            if (std::isnan(a) || std::isnan(e)) {
                ok = std::isnan(a) && std::isnan(e);
                err = ok ? 0 : INFINITY;
            } else if (std::isinf(a) || std::isinf(e)) {
                ok = a == e;
                err = ok ? 0 : INFINITY;
            } else {
                err = std::abs(a - e);
                ok = err <= atol_ + rtol_ * std::abs(e);
            }
            if (!ok) {
                if (bad < 5) os << "\n  [" << i << "] actual " << a << " expected " << e;
                bad++;
                if (err > worst_err) worst_err = err, worst = i;
            }
        }
        if (bad) {
            std::ostringstream head;
            const double e = double(expected_[worst]);
            head << bad << " of " << actual.size() << " elements differ (rtol " << rtol_ << ", atol " << atol_
                 << "); worst at [" << worst << "]: actual " << double(actual[worst]) << " expected " << e
                 << " abs err " << worst_err << " rel err " << worst_err / std::max(std::abs(e), 1e-300)
                 << "; first ones:" << os.str();
            report_ = head.str();
        }
        return bad == 0;
    }
    std::string describe() const override { return "is all-close to the expected values: " + report_; }

private:
    std::vector<T> expected_;
    double rtol_ = 0, atol_ = 0;
    mutable std::string report_;
};

template <typename T>
AllCloseMatcher<T> AllClose(const std::vector<T>& expected) {
    return AllCloseMatcher<T>(expected);
}

// Values of a tensor (any dtype, strides, device) as doubles, row-major.
inline std::vector<double> values(const Tensor& t) {
    return t.detach().to(Device::cpu()).to(DType::float64).contiguous().to_vector<double>();
}

// A tensor of `shape` holding `v` (row-major), converted to dtype.
inline Tensor make(std::vector<double> v, const Shape& shape, DType dtype = DType::float64) {
    return Tensor::from_vector(std::move(v), shape).to(dtype);
}

// Bit-for-bit equality (the sign of a zero and NaN payloads included).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    // (memcmp must not see the null data() of empty vectors.)
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The same for vectors of any element type (signed zeros and NaN payloads included).
template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Exact parity: same shape, dtype and bytes. On a mismatch, reports where the values differ.
inline void require_identical(const Tensor& expected, const Tensor& actual) {
    REQUIRE(actual.shape() == expected.shape());
    REQUIRE(actual.dtype() == expected.dtype());
    const Tensor e = expected.detach().contiguous(), a = actual.detach().contiguous();
    const size_t bytes = size_t(e.numel()) * dtype_size(e.dtype());
    if (bytes == 0 || std::memcmp(e.raw_data(), a.raw_data(), bytes) == 0) return;
    REQUIRE_THAT(values(a), AllClose(values(e)));  // reports where, when the values differ
    FAIL("the bytes differ: the sign of a zero or a NaN payload");
}

}  // namespace dyad::test

// Catch prints the value under test when a matcher fails; for vectors of thousands of values that buries
// the matcher's own report, so print only the size and the first few values.
namespace Catch {
template <typename T>
std::string dyad_summary(const std::vector<T>& v) {
    std::ostringstream os;
    os << "vector of " << v.size() << " {";
    for (size_t i = 0; i < v.size() && i < 8; i++) os << (i ? ", " : "") << double(v[i]);
    os << (v.size() > 8 ? ", ...}" : "}");
    return os.str();
}
template <>
struct StringMaker<std::vector<float>> {
    static std::string convert(const std::vector<float>& v) { return dyad_summary(v); }
};
template <>
struct StringMaker<std::vector<double>> {
    static std::string convert(const std::vector<double>& v) { return dyad_summary(v); }
};
}  // namespace Catch
