// TwoLayerNet (784-50-10) on Fashion-MNIST, SGD lr 0.1, batch 100, shuffled,
// flattened input: ms per iteration and seconds per epoch (600 iterations)
// at 1 and 2 threads, peak RSS. One JSON line per thread setting; see
// training_bench.hpp for what is timed.
#include "training_bench.hpp"

int main(int argc, char** argv) {
  zg::bench::TrainingBench b;
  b.name = "mlp_epoch";
  b.flatten = true;
  b.model = [] { return zg::nn::models::two_layer_net(784, 50, 10); };
  b.optimizer = [](const std::vector<zg::Variable>& p) { return std::make_unique<zg::optim::SGD>(p, 0.1f); };
  b.optimizer_desc = "SGD lr 0.1";
  b.iterations = 600;  // one epoch of 60000 images
  b.repeats = 3;
  b.warmup = 20;
  return zg::bench::run_training_bench(
      b, "mlp_epoch: TwoLayerNet 784-50-10 on Fashion-MNIST, SGD lr 0.1, batch 100; one JSON line per thread setting",
      argc, argv);
}
