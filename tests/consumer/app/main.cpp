// A program outside the dyad tree that links dyad::dyad: one forward/backward and a checked result.
#include <cstdio>

#include <dyad/dyad.h>

int main() {
    using namespace dyad;
    Tensor w = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}).requires_grad_();
    Tensor x = Tensor::ones({3, 2});
    Tensor loss = sum(relu(matmul(x, w)));
    loss.backward();
    // loss = 3 * (1+3 + 2+4) = 30; d loss / d w = 3 everywhere.
    const std::vector<float> g = w.grad().to_vector<float>();
    const bool ok = loss.item() == 30.0 && g == std::vector<float>{3, 3, 3, 3};
    std::printf("consumer: loss %.1f, CUDA %s: %s\n", loss.item(), cuda_built() ? "built" : "not built",
                ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
