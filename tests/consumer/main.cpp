// Uses an installed zerograd the way a program would, built with no arch
// flags of its own: trains a tiny model (exits 1 unless the loss falls),
// round-trips a checkpoint, runs a user-defined op through gradcheck in
// float64 and catches a zerograd error by its type across the library
// boundary (which needs the library's typeinfo exported); and, when the
// library has its ONNX layer, exports the model to ONNX.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <zerograd/zerograd.hpp>
#if __has_include(<zerograd/onnx.hpp>)
#include <zerograd/onnx.hpp>
#define CONSUMER_ONNX 1
#endif

namespace {

struct Cube {
  std::string name() const { return "Cube"; }
  template <class T> zg::Outputs<T> forward(const zg::TensorList<T>& x) const {
    return zg::Tensor<T>(x[0] * x[0] * x[0]);
  }
  // d x^3 = 3 x^2 dx
  template <class T> zg::Variables<T> backward(const zg::Function<T>& self, const zg::Variables<T>& gy) const {
    return {gy[0] * self.input(0) * self.input(0) * T(3)};
  }
};

int fail(const char* what) {
  std::cerr << "consumer: " << what << "\n";
  return 1;
}

}  // namespace

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
  if (!(last < 0.5f * first)) return fail("the loss did not fall");

  const std::string path = "consumer-checkpoint.npz";
  zg::nn::save_checkpoint(path, model);
  zg::nn::MLP copy(2, {16}, 3);
  zg::nn::load_checkpoint(path, copy);
  std::remove(path.c_str());
  if (!(copy(x).data() == model(x).data())) return fail("the checkpoint did not restore the model");

#ifdef CONSUMER_ONNX
  const std::string onnx_path = "consumer.onnx";
  zg::onnx::export_model(model, x, onnx_path);
  const auto onnx_bytes = std::ifstream(onnx_path, std::ios::binary | std::ios::ate).tellg();
  std::remove(onnx_path.c_str());
  std::cout << "consumer: exported the model to ONNX, " << onnx_bytes << " bytes\n";
  if (!(onnx_bytes > 400)) return fail("zg::onnx::export_model wrote no model");
#endif

  zg::Variable64 c(zg::Tensor<double>({0.5, 1.5, -2.0}));
  auto report = zg::gradcheck([](const std::vector<zg::Variable64>& v) { return zg::call(Cube{}, v[0]); }, {c});
  std::cout << "consumer: " << report << "\n";
  if (!report.passed) return fail("gradcheck of a user-defined op failed");

  try {
    zg::matmul(zg::Variable(zg::Tensor<float>({{1.f, 2.f}})), zg::Variable(zg::Tensor<float>({{1.f, 2.f}})));
    return fail("a bad matmul did not throw");
  } catch (const zg::ShapeError& e) {
    std::cout << "consumer: caught zg::ShapeError: " << e.what() << "\n";
  }
  return 0;
}
