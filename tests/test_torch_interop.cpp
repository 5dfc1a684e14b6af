// Weights to and from PyTorch (nn/torch_interop.hpp), against PyTorch 1.13's
// own weights, inputs and outputs (tests/fixtures/torch_interop/make_fixture.py).
#include <doctest/doctest.h>
#include <zip.h>

#include <filesystem>
#include <map>
#include <zerograd/zerograd.hpp>

#include "testing.hpp"

namespace {

namespace nn = zg::nn;
using zg::Tensor;
using zg::Variable;
using zg::testing::empty_dir;
using zg::testing::message_of;

std::string fixture(const std::string& name) { return std::string(ZG_FIXTURES_DIR) + "/torch_interop/" + name; }

std::map<std::string, Tensor<float>> read_all(const std::string& path) {
  nn::NpzReader r(path);
  std::map<std::string, Tensor<float>> out;
  for (const auto& m : r.members()) out[m.name] = r.read_float(m, r.header(m));
  return out;
}

// The PyTorch models of make_fixture.py, from zerograd's layers.
std::shared_ptr<nn::Sequential> mixed() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::ConvTranspose2d>(4, 2, 2, 2), std::make_shared<nn::MaxPool2d>(4),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(32, 16), std::make_shared<nn::LayerNorm>(zg::Shape{16}),
      std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(16, 3)});
}
std::shared_ptr<nn::Sequential> embed() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Embedding>(10, 4), std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(12, 6),
      std::make_shared<nn::BatchNorm1d>(6), std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(6, 2)});
}
const nn::TorchNames simple_names{{{"conv", "conv1"}, {"fc1", "affine1"}, {"fc2", "affine2"}}};

// max |a - b| / (1 + |b|).
double worst(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(double(a.flat(i)) - b.flat(i)) / (1 + std::abs(double(b.flat(i)))));
  return w;
}

double predict_error(nn::Module& net, const std::string& io) {
  auto xy = read_all(fixture(io));
  net.eval();
  zg::NoGradGuard no_grad;
  return worst(net(Variable(xy.at("x"))).data(), xy.at("y"));
}

// A copy of the fixture `from` at `to` whose member `name` holds `npy`.
void replace_member(const std::string& from, const std::string& to, const std::string& name, const std::string& npy) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  int err = 0;
  zip_t* z = zip_open(to.c_str(), 0, &err);
  REQUIRE(z);
  zip_source_t* src = zip_source_buffer(z, npy.data(), npy.size(), 0);
  REQUIRE(src);
  REQUIRE(zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE) >= 0);
  REQUIRE(zip_close(z) == 0);
}

}  // namespace

TEST_CASE("torch_interop: PyTorch's weights predict as PyTorch does") {
  zg::manual_seed(3);
  SUBCASE("names as nn.Sequential's: Conv2d, BatchNorm2d, ConvTranspose2d, Linear, LayerNorm") {
    auto net = mixed();
    const auto before = net->state();
    nn::load_torch_npz(fixture("mixed.npz"), *net);
    CHECK(worst(net->state()[0].second, before[0].second) > 0.01);  // the weights did change
    CHECK(predict_error(*net, "mixed_io.npz") <= 1e-5);
  }
  SUBCASE("Embedding, BatchNorm1d") {
    auto net = embed();
    nn::load_torch_npz(fixture("embed.npz"), *net);
    CHECK(predict_error(*net, "embed_io.npz") <= 1e-5);
  }
  SUBCASE("the book's SimpleConvNet, renamed") {
    auto net = nn::models::simple_conv_net(1, 8);
    nn::load_torch_npz(fixture("simple_cnn.npz"), *net, simple_names);
    CHECK(predict_error(*net, "simple_cnn_io.npz") <= 1e-5);
  }
  SUBCASE("the book's SimpleConvNet, paired by order") {
    auto net = nn::models::simple_conv_net(1, 8);
    nn::TorchNames by_order;
    by_order.by_order = true;
    nn::load_torch_npz(fixture("simple_cnn.npz"), *net, by_order);
    CHECK(predict_error(*net, "simple_cnn_io.npz") <= 1e-5);
  }
  SUBCASE("from arrays in memory") {
    auto net = nn::models::simple_conv_net(1, 8);
    nn::NamedArrays sd;
    for (auto& [k, v] : read_all(fixture("simple_cnn.npz"))) sd.emplace_back(k, v);
    net->load_state(nn::from_torch_state_dict(*net, sd, simple_names), true);
    CHECK(predict_error(*net, "simple_cnn_io.npz") <= 1e-5);
  }
}

TEST_CASE("torch_interop: zerograd's weights in PyTorch's names and layouts") {
  zg::manual_seed(4);
  SUBCASE("what was loaded from PyTorch goes back to the same arrays, exactly") {
    for (const char* name : {"mixed", "embed"}) {
      auto net = std::string(name) == "mixed" ? mixed() : embed();
      nn::load_torch_npz(fixture(std::string(name) + ".npz"), *net);
      const auto want = read_all(fixture(std::string(name) + ".npz"));
      const auto got = nn::to_torch_state_dict(*net);
      CHECK(got.size() == want.size());
      for (const auto& entry : got) {
        const std::string& k = entry.first;  // INFO captures it: clang 14 cannot capture a structured binding
        INFO(name << " " << k);
        REQUIRE(want.count(k));
        CHECK(entry.second == want.at(k));
      }
    }
  }
  SUBCASE("Linear's weight is transposed, BatchNorm's gamma and beta are weight and bias") {
    auto net = embed();
    auto state = net->state();
    std::map<std::string, Tensor<float>> ours(state.begin(), state.end());
    auto sd = nn::to_torch_state_dict(*net);
    std::map<std::string, Tensor<float>> theirs(sd.begin(), sd.end());
    CHECK(theirs.at("2.weight").shape() == std::vector<std::size_t>{6, 12});
    CHECK(theirs.at("2.weight")(5, 11) == ours.at("2.weight")(11, 5));
    CHECK(theirs.at("3.weight") == ours.at("3.gamma"));
    CHECK(theirs.at("3.running_var") == ours.at("3.running_var"));
    CHECK(theirs.count("3.gamma") == 0);
  }
  SUBCASE("save_torch_npz then load_torch_npz into another model gives the same model") {
    const auto dir = empty_dir("torch_interop");
    auto a = nn::models::simple_conv_net(1, 8);
    zg::manual_seed(99);
    auto b = nn::models::simple_conv_net(1, 8);
    nn::save_torch_npz((dir / "a.npz").string(), *a, simple_names);
    CHECK(read_all((dir / "a.npz").string()).count("fc1.weight") == 1);
    nn::load_torch_npz((dir / "a.npz").string(), *b, simple_names);
    const auto sa = a->state(), sb = b->state();
    for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].second == sb[i].second);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("torch_interop: mismatches name both sides, and nothing is loaded") {
  const auto dir = empty_dir("torch_interop_bad");
  zg::manual_seed(5);
  auto net = nn::models::simple_conv_net(1, 8);
  const auto before = net->state();
  auto unchanged = [&] {
    const auto now = net->state();
    for (std::size_t i = 0; i < now.size(); ++i)
      if (!(now[i].second == before[i].second)) return false;
    return true;
  };
  auto sd = nn::to_torch_state_dict(*net, simple_names);
  SUBCASE("a missing array, an unexpected one") {
    sd.erase(sd.begin() + 1);
    sd.emplace_back("fc3.weight", Tensor<float>({1.f}));
    const std::string msg = message_of<zg::ValueError>([&] { nn::from_torch_state_dict(*net, sd, simple_names); });
    CHECK(msg.find("'conv.bias' (for 'conv1.bias', PyTorch shape (30)) is missing") != std::string::npos);
    CHECK(msg.find("'fc3.weight' is not in the module") != std::string::npos);
  }
  SUBCASE("Linear's weight in zerograd's layout") {
    for (auto& [k, v] : sd)
      if (k == "fc2.weight") v = Tensor<float>(xt::transpose(v));
    CHECK(message_of<zg::ValueError>([&] { nn::from_torch_state_dict(*net, sd, simple_names); })
              .find("'fc2.weight' has shape (100, 10), 'affine2.weight' needs (10, 100) in PyTorch's layout") !=
          std::string::npos);
  }
  SUBCASE("without the names mapped") {
    CHECK(message_of<zg::ValueError>([&] { nn::from_torch_state_dict(*net, sd); })
              .find("'conv1.weight' (for 'conv1.weight', PyTorch shape (30, 1, 5, 5)) is missing") !=
          std::string::npos);
  }
  SUBCASE("by order, with a layer too many") {
    sd.emplace_back("fc3.bias", Tensor<float>({1.f}));
    nn::TorchNames by_order;
    by_order.by_order = true;
    CHECK(message_of<zg::ValueError>([&] { nn::from_torch_state_dict(*net, sd, by_order); })
              .find("by_order: the state_dict has 4 modules with arrays (conv, fc1, fc2, fc3), the module 3 "
                    "(conv1, affine1, affine2)") != std::string::npos);
  }
  SUBCASE("a float64 array in the file") {
    const auto path = (dir / "f8.npz").string();
    replace_member(fixture("simple_cnn.npz"), path, "fc2.bias", nn::encode_npy(Tensor<double>(xt::zeros<double>({10}))));
    CHECK(message_of<zg::ValueError>([&] { nn::load_torch_npz(path, *net, simple_names); })
              .find("'fc2.bias' is <f8, not float32") != std::string::npos);
    CHECK(unchanged());
  }
  SUBCASE("a member declaring far more than its array needs is not inflated") {
    const auto path = (dir / "big.npz").string();
    replace_member(fixture("simple_cnn.npz"), path, "fc2.bias",
                   nn::encode_npy(Tensor<float>(xt::zeros<float>({1000, 1000}))));
    CHECK(message_of<zg::ValueError>([&] { nn::load_torch_npz(path, *net, simple_names); })
              .find("'fc2.bias' declares 4000128 bytes, more than (10) float32 needs") != std::string::npos);
    CHECK(unchanged());
  }
  SUBCASE("a damaged file is an IOError") {
    const auto path = (dir / "cut.npz").string();
    std::filesystem::copy_file(fixture("simple_cnn.npz"), path);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    CHECK(message_of<zg::IOError>([&] { nn::load_torch_npz(path, *net, simple_names); }).find("cut.npz") !=
          std::string::npos);
    CHECK(unchanged());
  }
  std::filesystem::remove_all(dir);
}
