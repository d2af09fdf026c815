// xoshiro256** (Blackman and Vigna) with a splitmix64 seeding sequence; Box-Muller normals.
#include "lib/tensor/random.h"

#include <cmath>

#include "dyad/error.h"
#include "dyad/tensor.h"

namespace dyad {
namespace detail {

static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void Generator::seed_with(uint64_t seed) {
    for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Generator::next() {
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

double Generator::uniform() { return double(next() >> 11) * 0x1.0p-53; }

double Generator::normal() {
    // One value per pair of uniforms: no cached second value, so the stream depends only on the count
    // of draws. u1 is in (0, 1] so the log is finite.
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

void Generator::get_state(uint64_t out[4]) const {
    for (int i = 0; i < 4; i++) out[i] = s_[i];
}

void Generator::set_state(const uint64_t in[4]) {
    for (int i = 0; i < 4; i++) s_[i] = in[i];
}

Generator& global_generator() {
    // One per thread: a thread's random stream (initial weights, dropout masks) depends on its own seed and
    // draws only, never on another thread's. Every thread starts from the default seed.
    thread_local Generator g;
    return g;
}

}  // namespace detail

void manual_seed(uint64_t seed) { detail::global_generator().seed_with(seed); }

RngState rng_state() {
    RngState st;
    detail::global_generator().get_state(st.s);
    return st;
}

void set_rng_state(const RngState& state) {
    DYAD_CHECK(state.s[0] | state.s[1] | state.s[2] | state.s[3], "set_rng_state: the all-zero state is invalid");
    detail::global_generator().set_state(state.s);
}

}  // namespace dyad
