// CUDA tests for optim: cuda vs naive.
#include <catch2/catch.hpp>
