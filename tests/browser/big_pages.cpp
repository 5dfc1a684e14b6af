// Writes the graph player's two big pages, which the browser test loads and
// plays: one training step of TwoLayerNet (784 - 50 ReLU - 10, batch 100:
// the whole graph, forward and backward, then the SGD update) and a chain of
// 1,000 Functions, half of whose intermediates are freed (abs, then times a constant).
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

#include <zerograd/zerograd.hpp>

#include "../../examples/chapters.hpp"

namespace {

void write(const std::filesystem::path& path, const std::string& html) {
  zg::write_text_file(path.string(), html);
  std::cout << path.string() << ": " << std::filesystem::file_size(path) << " bytes\n";
}

void two_layer_net_step(const std::filesystem::path& dir) {
  zg::chapters::TwoLayerNet<float> net(784, 50, 10, 0.01, zg::chapters::Hidden::ReLU);
  std::mt19937 gen(0);
  std::uniform_real_distribution<float> pixel(0.f, 1.f);
  zg::Tensor<float> x = zg::Tensor<float>::from_shape({100, 784}), t = zg::Tensor<float>::from_shape({100});
  for (auto& v : x) v = pixel(gen);
  for (std::size_t i = 0; i < t.size(); ++i) t(i) = float(i % 10);
  zg::GraphRecorder<float> recorder;
  auto loss = net.loss(zg::Variable(x, "x"), zg::Variable(t, "t")).set_name("loss");
  recorder.backward(loss);
  for (zg::Variable* p : net.params()) p->data() -= 0.1f * p->grad().data();  // SGD: not part of the graph
  zg::HtmlOptions o;
  o.title = "TwoLayerNet 784-50-10, one training step (batch 100)";
  write(dir / "two_layer_net_step.html", recorder.html(o));
}

void chain(const std::filesystem::path& dir) {
  zg::Variable64 x(0.5, "x");
  x.requires_grad_();
  zg::GraphRecorder<double> recorder;
  zg::Variable64 y = x;
  for (int i = 0; i < 500; ++i) y = zg::abs(y) * 1.002;  // x * c keeps only abs(y)'s shape
  y.set_name("y");
  recorder.backward(y);
  zg::HtmlOptions o;
  o.title = "A chain of 1,000 Functions";
  write(dir / "chain1000.html", recorder.html(o));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: big_pages OUT_DIR\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(argv[1]);
    two_layer_net_step(argv[1]);
    chain(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "big_pages: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
