// Host-side layout changes for the channels_last kernel tests: (n, c, hw) <-> (n, hw, c), which is NCHW <->
// NHWC with hw = H*W and KCRS <-> KRSC with n = K, hw = R*S.
#pragma once
#include <cstdint>
#include <vector>

namespace dyad::test {

template <typename T>
std::vector<T> to_nhwc(const std::vector<T>& v, int64_t n, int64_t c, int64_t hw) {
    std::vector<T> out(v.size());
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) out[size_t((b * hw + i) * c + ch)] = v[size_t((b * c + ch) * hw + i)];
    return out;
}

template <typename T>
std::vector<T> to_nchw(const std::vector<T>& v, int64_t n, int64_t c, int64_t hw) {
    std::vector<T> out(v.size());
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) out[size_t((b * c + ch) * hw + i)] = v[size_t((b * hw + i) * c + ch)];
    return out;
}

}  // namespace dyad::test
