// CUDA tests for reduce: cuda vs naive.
#include <catch2/catch.hpp>
