// Deep Learning from Scratch, chapter 8: DeepConvNet (six 3x3 convs with He
// init, three max pools, Affine 50, Dropout, Affine 10, Dropout) trained with
// Adam on Fashion-MNIST, as the book's train_deepnet.py, then the test images
// it gets wrong (the book's figure 8-3).
#include <algorithm>
#include <iostream>

#include "convnets.hpp"

namespace {

namespace fs = std::filesystem;
using namespace zg;

const char* const kClasses[] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string class_name(std::size_t c) { return c < 10 ? kClasses[c] : std::to_string(c); }

// The class the model picks for each image, in eval mode.
std::vector<std::size_t> predictions(nn::Module& model, const nn::data::TensorDataset& data) {
  nn::EvalModeGuard eval_mode;
  NoGradGuard no_grad;
  nn::data::DataLoader loader(data, {500, false, false, false});
  nn::data::DataLoader::Batch b;
  std::vector<std::size_t> out;
  while (loader.next(b)) {
    const auto cls = argmax_indices(model(b.x), 1);
    out.insert(out.end(), cls.begin(), cls.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, chapter 8: DeepConvNet (conv16-conv16-pool-conv32-conv32-pool-\n"
      "conv64-conv64-pool-Affine 50-Dropout-Affine 10-Dropout, 3x3 convs, He init) trained on\n"
      "Fashion-MNIST with Adam (lr 0.001, batch 100), as the book's train_deepnet.py. Prints the\n"
      "test accuracy after each epoch, then the misclassified test images (index, true and predicted\n"
      "class). Writes DIR/metrics.csv, DIR/loss.png, DIR/accuracy.png and DIR/misclassified.png.\n"
      "The default (1 epoch on the first 6000 training images) takes about 8 s on 2 cores (test\n"
      "accuracy about 0.70). A full epoch (--limit 0) takes about 29 s on 2 free cores (26 s of\n"
      "training), longer when they are loaded: test accuracy about 0.81 after 1 epoch, 0.89 after 5,\n"
      "0.90 after 8 (4 minutes).\n"
      "A --save checkpoint continues with: train --model deep-cnn --optimizer adam --resume FILE"};
  convnets::Options o;
  o.out = "out/ch8_deep_convnet";
  o.limit = 6000;
  std::size_t shown = 20;
  convnets::add_options(app, o);
  app.add_option("--show", shown, "Misclassified test images to list and draw")->check(cli::Range(0, 1000))
      ->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(o.threads);
    zg::manual_seed(o.seed);
    fs::create_directories(o.out);
    const convnets::Data d = convnets::load(o);
    auto net = nn::models::deep_conv_net();
    std::cout << net->summary() << "optimizer: Adam, lr 0.001, batch 100, threads " << zg::num_threads() << "\n";

    convnets::fit(*net, d, o, "DeepConvNet, Adam");

    const auto predicted = predictions(*net, d.test);
    std::vector<std::size_t> wrong;
    for (std::size_t i = 0; i < predicted.size(); ++i)
      if (predicted[i] != std::size_t(d.test.labels(i))) wrong.push_back(i);
    std::cout << wrong.size() << " of " << predicted.size() << " test images misclassified; the first "
              << std::min(shown, wrong.size()) << ":\n  index  true        predicted\n";
    convnets::Panel panel{"misclassified test images: true -> predicted", {}, 5};
    for (std::size_t k = 0; k < std::min(shown, wrong.size()); ++k) {
      const std::size_t i = wrong[k];
      const std::string truth = class_name(std::size_t(d.test.labels(i))), guess = class_name(predicted[i]);
      std::cout << "  " << std::setw(5) << i << "  " << std::left << std::setw(12) << truth << guess << std::right
                << "\n";
      Tensor<float> image = Tensor<float>::from_shape({d.test.images.shape(2), d.test.images.shape(3)});
      std::copy_n(d.test.images.data() + i * image.size(), image.size(), image.begin());
      panel.tiles.push_back({std::move(image), "#" + std::to_string(i) + ": " + truth + " -> " + guess});
    }
    if (!panel.tiles.empty()) {
      const std::string png = (fs::path(o.out) / "misclassified.png").string();
      examples::report_plot(convnets::plot_tiles(png, {panel}, 900, 260 + 180 * int((panel.tiles.size() + 4) / 5)),
                            png);
    }
  } catch (const std::exception& e) {
    std::cerr << "ch8_deep_convnet: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
