// The book's models, train-lm's LSTM language model and a GPT to and from
// PyTorch. With examples/torch_interop.py:
//   python3 examples/torch_interop.py export --model simple-cnn --out torch.npz --inputs x.npy --predictions torch_y.npy
//   ./build/examples/torch_interop --model simple-cnn --load torch.npz --inputs x.npy --expect torch_y.npy
// and the other way round with --save and the script's predict.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

#include "language_model.hpp"

namespace {

namespace nn = zg::nn;

// The attribute names examples/torch_interop.py gives each model's layers.
nn::TorchNames torch_names(const std::string& model) {
  // As PyTorch's word_language_model example names them; the LSTM's own
  // arrays (weight_ih_l0, ...) are named alike on both sides.
  if (model == "lstm-lm") return {{{"encoder", "embedding"}, {"decoder", "head"}}};
  if (model == "gpt") return {};  // wte, wpe, blocks.layers.N..., ln_f, lm_head on both sides
  if (model == "two-layer") return {{{"fc1", "affine1"}, {"fc2", "affine2"}}};
  if (model == "simple-cnn") return {{{"conv", "conv1"}, {"fc1", "affine1"}, {"fc2", "affine2"}}};
  // deep-cnn is one nn.Sequential there: its layers are numbered.
  return {{{"0", "conv1"}, {"2", "conv2"}, {"5", "conv3"}, {"7", "conv4"}, {"10", "conv5"}, {"12", "conv6"},
           {"16", "affine1"}, {"19", "affine2"}}};
}

// The sizes of the sequence models (the same defaults as the script's).
struct SequenceSizes {
  std::size_t vocab = 20, embed = 8, hidden = 16, layers = 2;  // gpt: embed is n_embd, layers n_layer
  std::size_t heads = 2, block = 8;                             // gpt only
};

std::shared_ptr<nn::Module> build(const std::string& model, std::size_t size, const SequenceSizes& s) {
  if (model == "two-layer") return nn::models::two_layer_net(size * size);
  if (model == "simple-cnn") return nn::models::simple_conv_net(1, size);
  if (model == "deep-cnn") return nn::models::deep_conv_net(1, size);
  if (model == "lstm-lm") {
    zg::examples::LanguageModelConfig c;
    c.kind = "lstm";
    c.vocab = s.vocab, c.embed = s.embed, c.hidden = s.hidden, c.layers = s.layers;
    return zg::examples::make_language_model(c);
  }
  nn::GPTOptions o(s.vocab, s.block);
  o.n_layer = s.layers, o.n_head = s.heads, o.n_embd = s.embed, o.dropout = 0;
  return std::make_shared<nn::GPT>(o);
}

// Fresh LayerNorms hold ones and zeros, and a TransformerEncoder's layers
// start as copies of one layer: noise on every parameter makes a swapped or
// misplaced array change the outputs.
void jitter(nn::Module& net) {
  for (auto& p : net.parameters()) p.data() += zg::randn<float>(p.shape()).data() * 0.1f;
}

// Written to a temporary beside the target, then renamed over it.
void write_npy(const std::string& path, const zg::Tensor<float>& a) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const std::string bytes = nn::encode_npy(a);
    if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !out.flush())
      throw zg::IOError("torch_interop: cannot write '" + tmp + "'");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{"Loads a PyTorch state_dict (.npz from examples/torch_interop.py) into the same zerograd model, "
               "or saves a zerograd model for PyTorch, and predicts on .npy images or token ids."};
  std::string model = "simple-cnn", load, save, checkpoint, inputs, predictions, expect;
  std::size_t size = 28;
  std::uint64_t seed = 1;
  double tolerance = 1e-5;
  SequenceSizes sizes;
  app.add_option("--model", model, "two-layer, simple-cnn, deep-cnn, lstm-lm or gpt")
      ->check(cli::IsMember({"two-layer", "simple-cnn", "deep-cnn", "lstm-lm", "gpt"}));
  app.add_option("--size", size, "image side (default 28)");
  app.add_option("--vocab", sizes.vocab, "lstm-lm, gpt: vocabulary size (default 20)");
  app.add_option("--embed", sizes.embed, "lstm-lm: embedding size; gpt: n_embd (default 8)");
  app.add_option("--hidden", sizes.hidden, "lstm-lm: LSTM hidden size (default 16)");
  app.add_option("--layers", sizes.layers, "lstm-lm: LSTM layers; gpt: n_layer (default 2)");
  app.add_option("--heads", sizes.heads, "gpt: n_head (default 2)");
  app.add_option("--block", sizes.block, "gpt: block_size, the longest sequence (default 8)");
  app.add_option("--seed", seed, "seed of the initial weights (without --load or --checkpoint)");
  app.add_option("--load", load, "an .npz of PyTorch's state_dict to load");
  app.add_option("--checkpoint", checkpoint, "a zerograd checkpoint (from train --out) to load");
  app.add_option("--save", save, "write the model as a PyTorch state_dict .npz");
  app.add_option("--inputs", inputs,
                 "an .npy of float32 images (N, 1, size, size), or of token ids (B, T) for lstm-lm and gpt");
  app.add_option("--predictions", predictions, "write the outputs on --inputs here (.npy)");
  app.add_option("--expect", expect, "compare the outputs with this .npy; fail beyond --tolerance");
  app.add_option("--tolerance", tolerance, "of max |difference| / (1 + |expected|) (default 1e-5)");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::manual_seed(seed);
    auto net = build(model, size, sizes);
    if (model == "lstm-lm" || model == "gpt") jitter(*net);
    if (!checkpoint.empty()) nn::load_checkpoint(checkpoint, *net, [](const nn::NamedArrays&) {});
    if (!load.empty()) {
      nn::load_torch_npz(load, *net, torch_names(model));
      std::cout << "loaded " << load << " into " << model << " (" << net->parameter_count() << " parameters)\n";
    }
    if (!save.empty()) {
      nn::save_torch_npz(save, *net, torch_names(model));
      std::cout << "wrote " << save << "\n";
    }
    if (inputs.empty()) return 0;
    net->eval();
    zg::NoGradGuard no_grad;
    const zg::Tensor<float> y = (*net)(zg::Variable(nn::load_npy(inputs))).data();
    if (!predictions.empty()) {
      write_npy(predictions, y);
      std::cout << "wrote " << predictions << " " << zg::shape_str(y.shape()) << "\n";
    }
    if (expect.empty()) return 0;
    const zg::Tensor<float> want = nn::load_npy(expect);
    if (want.shape() != y.shape())
      throw zg::ValueError("torch_interop: outputs " + zg::shape_str(y.shape()) + ", '" + expect + "' holds " +
                           zg::shape_str(want.shape()));
    double err = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
      err = std::fmax(err, std::fabs(double(y.flat(i)) - want.flat(i)) / (1 + std::fabs(double(want.flat(i)))));
    std::printf("max |difference| / (1 + |expected|) = %.3g against %s (tolerance %g)\n", err, expect.c_str(),
                tolerance);
    return err <= tolerance ? 0 : 1;
  } catch (const zg::Error& e) {
    std::cerr << "torch_interop: " << e.what() << "\n";
    return 1;
  }
}
