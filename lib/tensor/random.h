// The random generator behind randn/rand and dropout: one per thread (global_generator() is the calling
// thread's), seeded by manual_seed on that thread.
// xoshiro256** seeded through splitmix64; normals by Box-Muller. Everything is dyad's own arithmetic, so
// a seed gives the same numbers with every compiler and standard library.
#pragma once
#include <cstdint>

namespace dyad::detail {

class Generator {
public:
    explicit Generator(uint64_t seed = 0x5eed) { seed_with(seed); }
    void seed_with(uint64_t seed);
    uint64_t next();   // 64 random bits
    double uniform();  // [0, 1), 53 random bits
    double normal();   // standard normal
    void get_state(uint64_t out[4]) const;
    void set_state(const uint64_t in[4]);

private:
    uint64_t s_[4];
};

Generator& global_generator();

}  // namespace dyad::detail
