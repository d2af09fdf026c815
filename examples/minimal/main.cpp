// The smallest dyad program: a two-layer perceptron written with raw tensors, trained by hand-rolled SGD
// on a toy problem (which of two noisy clusters a 2-D point belongs to). The loss falls step by step.
// Comparisons (gt, eq) give uint8 masks, converted to float32 where arithmetic follows.
#include <cstdio>

#include <dyad/dyad.h>

using namespace dyad;

int main() try {
    manual_seed(0);
    // Data: 256 points; class 1 around (+1, +1), class 0 around (-1, -1). Targets are 0/1 as floats.
    const int64_t n = 256;
    Tensor y = gt(Tensor::rand({n, 1}), 0.5).to(DType::float32);  // the class, 0 or 1
    Tensor x = Tensor::randn({n, 2}) * 0.7 + (y * 2.0 - 1.0);     // around -1 or +1: (n,1) over (n,2)

    // Parameters: 2 -> 16 -> 1, small random weights.
    Tensor w1 = (Tensor::randn({2, 16}) * 0.5).requires_grad_();
    Tensor b1 = Tensor::zeros({16}).requires_grad_();
    Tensor w2 = (Tensor::randn({16, 1}) * 0.5).requires_grad_();
    Tensor b2 = Tensor::zeros({1}).requires_grad_();

    const double lr = 0.1;
    for (int step = 0; step <= 100; step++) {
        Tensor h = relu(matmul(x, w1) + b1);
        Tensor out = matmul(h, w2) + b2;
        Tensor loss = mean(pow(out - y, 2.0));  // mean squared error
        zero_grad({w1, b1, w2, b2});
        loss.backward();
        {
            NoGradGuard no_grad;  // the update itself is not part of the graph
            for (Tensor p : {w1, b1, w2, b2}) p.add_(p.grad(), -lr);
        }
        if (step % 10 == 0) {
            NoGradGuard no_grad;
            const double acc = mean(eq(gt(out, 0.5), y).to(DType::float32)).item();  // predicted = target
            std::printf("step %2d  loss %.4f  accuracy %.3f\n", step, loss.item(), acc);
        }
    }
    return 0;
} catch (const dyad::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
