#pragma once
/// @file
/// The networks of the book, ready to train on (N, 1, 28, 28) images.
#include <memory>

#include "zerograd/nn/layers.hpp"

/// @namespace zg::nn::models
/// The book's networks, built from zg::nn's layers.
namespace zg::nn::models {

/// TwoLayerNet (chapter 5): Linear 784-50 (std 0.01), ReLU, Linear 50-10.
/// Takes flattened (N, 784) or (N, 1, 28, 28) input.
std::shared_ptr<Sequential> two_layer_net(std::size_t in = 784, std::size_t hidden = 50, std::size_t out = 10,
                                          double weight_std = 0.01);

/// SimpleConvNet (chapter 7): Conv 30 filters 5x5 -> ReLU -> MaxPool 2x2/2 ->
/// Linear 100 -> ReLU -> Linear 10, weights std 0.01.
std::shared_ptr<Sequential> simple_conv_net(std::size_t channels = 1, std::size_t size = 28, std::size_t classes = 10,
                                            double weight_std = 0.01);

/// DeepConvNet (chapter 8): conv16-conv16-pool-conv32-conv32(pad 2)-pool-
/// conv64-conv64-pool-Linear 50-Dropout 0.5-Linear 10-Dropout 0.5, 3x3 convs
/// (pad 1 except the one marked), ReLU after each conv and the first Linear,
/// He init.
std::shared_ptr<Sequential> deep_conv_net(std::size_t channels = 1, std::size_t size = 28, std::size_t classes = 10);

}  // namespace zg::nn::models
