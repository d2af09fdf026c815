// CUDA tests for train_step: cuda vs naive.
#include <catch2/catch.hpp>
