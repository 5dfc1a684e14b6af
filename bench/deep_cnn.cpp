// DeepConvNet (the book's chapter 8: six 3x3 convs 16-16-32-32-64-64 with
// ReLU, three 2x2 max pools, Linear 1024-50, ReLU, Dropout 0.5, Linear 50-10,
// Dropout 0.5; He init) on Fashion-MNIST, Adam lr 0.001, batch 100: ms per
// iteration at 1 and 2 threads, peak RSS. One JSON line per thread setting;
// see training_bench.hpp for what is timed.
#include "training_bench.hpp"

int main(int argc, char** argv) {
  zg::bench::TrainingBench b;
  b.name = "deep_cnn";
  b.flatten = false;
  b.model = [] { return zg::nn::models::deep_conv_net(); };
  b.optimizer = [](const std::vector<zg::Variable>& p) { return std::make_unique<zg::optim::Adam>(p, 0.001f); };
  b.optimizer_desc = "Adam lr 0.001";
  b.iterations = 20;
  b.repeats = 3;
  b.warmup = 3;
  return zg::bench::run_training_bench(
      b, "deep_cnn: DeepConvNet on Fashion-MNIST, Adam lr 0.001, batch 100; one JSON line per thread setting",
      argc, argv);
}
