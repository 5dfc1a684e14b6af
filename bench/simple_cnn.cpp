// SimpleConvNet (conv 30x5x5, ReLU, max-pool 2, Linear 100, ReLU, Linear 10)
// on Fashion-MNIST, Adam lr 0.001, batch 100: ms per iteration at 1 and 2
// threads, peak RSS. One JSON line per thread setting; see
// training_bench.hpp for what is timed.
#include "training_bench.hpp"

int main(int argc, char** argv) {
  zg::bench::TrainingBench b;
  b.name = "simple_cnn";
  b.flatten = false;
  b.model = [] { return zg::nn::models::simple_conv_net(); };
  b.optimizer = [](const std::vector<zg::Variable>& p) { return std::make_unique<zg::optim::Adam>(p, 0.001f); };
  b.optimizer_desc = "Adam lr 0.001";
  b.iterations = 50;
  b.repeats = 3;
  b.warmup = 5;
  return zg::bench::run_training_bench(
      b, "simple_cnn: SimpleConvNet on Fashion-MNIST, Adam lr 0.001, batch 100; one JSON line per thread setting",
      argc, argv);
}
