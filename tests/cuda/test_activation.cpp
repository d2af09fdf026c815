// CUDA tests for activation: cuda vs naive.
#include <catch2/catch.hpp>
