#include "zerograd/nn/models.hpp"

#include "zerograd/nn/conv.hpp"

namespace zg::nn::models {

std::shared_ptr<Sequential> two_layer_net(std::size_t in, std::size_t hidden, std::size_t out, double std) {
  auto net = std::make_shared<Sequential>();
  net->add("affine1", std::make_shared<Linear>(in, hidden, Init::normal(std)));
  net->add("relu1", std::make_shared<ReLU>());
  net->add("affine2", std::make_shared<Linear>(hidden, out, Init::normal(std)));
  return net;
}

std::shared_ptr<Sequential> simple_conv_net(std::size_t channels, std::size_t size, std::size_t classes, double std) {
  const std::size_t conv_out = size - 5 + 1, pooled = conv_out / 2;
  auto net = std::make_shared<Sequential>();
  net->add("conv1", std::make_shared<Conv2d>(channels, 30, 5, 1, 0, std));
  net->add("relu1", std::make_shared<ReLU>());
  net->add("pool1", std::make_shared<MaxPool2d>(2));
  net->add("affine1", std::make_shared<Linear>(30 * pooled * pooled, 100, Init::normal(std)));
  net->add("relu2", std::make_shared<ReLU>());
  net->add("affine2", std::make_shared<Linear>(100, classes, Init::normal(std)));
  return net;
}

std::shared_ptr<Sequential> deep_conv_net(std::size_t channels, std::size_t size, std::size_t classes) {
  auto net = std::make_shared<Sequential>();
  std::size_t c = channels, s = size;
  int k = 0;
  auto conv = [&](std::size_t out, int pad) {
    net->add("conv" + std::to_string(++k), std::make_shared<Conv2d>(c, out, 3, 1, pad));
    net->add("relu" + std::to_string(k), std::make_shared<ReLU>());
    c = out;
    s = s + 2 * static_cast<std::size_t>(pad) - 2;
  };
  auto pool = [&](int i) {
    net->add("pool" + std::to_string(i), std::make_shared<MaxPool2d>(2));
    s /= 2;
  };
  conv(16, 1), conv(16, 1), pool(1);
  conv(32, 1), conv(32, 2), pool(2);
  conv(64, 1), conv(64, 1), pool(3);
  net->add("affine1", std::make_shared<Linear>(c * s * s, 50, Init::he()));
  net->add("relu7", std::make_shared<ReLU>());
  net->add("dropout1", std::make_shared<Dropout>(0.5));
  net->add("affine2", std::make_shared<Linear>(50, classes, Init::he()));
  net->add("dropout2", std::make_shared<Dropout>(0.5));
  return net;
}

}  // namespace zg::nn::models
