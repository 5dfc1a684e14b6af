// Trains a tiny model with an installed zerograd; exits 1 unless the loss falls.
#include <iostream>

#include <zerograd/zerograd.hpp>

int main() {
  zg::manual_seed(1);
  auto data = zg::nn::data::spiral(30);
  zg::nn::MLP model(2, {16}, 3);
  zg::optim::Adam adam(model.parameters(), 0.05f);
  zg::Variable x(data.images), t(data.labels);
  float first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    auto loss = zg::nn::functional::softmax_cross_entropy(model(x), t);
    loss.backward();
    adam.step();
    adam.zero_grad();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  std::cout << "consumer: loss " << first << " -> " << last << "\n";
  return last < 0.5f * first ? 0 : 1;
}
