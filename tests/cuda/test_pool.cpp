// CUDA tests for pool: cuda vs naive.
#include <catch2/catch.hpp>
