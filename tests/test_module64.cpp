// Modules in float64: Module::to<U>(), copy_state_from, rebuild, and
// nn::gradcheck(module, input) (nn/src/module.cpp, nn/src/module_gradcheck.cpp).
#include <zerograd/nn.hpp>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using zg::testing::uniform;

namespace {

// A custom module as a template on its dtype, with rebuild() so that
// to<double>() works on it.
template <class T>
struct Critic : nn::BasicModule<T> {
  std::size_t in, hidden;
  std::shared_ptr<nn::BasicLinear<T>> fc1, fc2;
  Critic(std::size_t in_features, std::size_t hidden_features) : in(in_features), hidden(hidden_features) {
    fc1 = this->register_module("fc1", std::make_shared<nn::BasicLinear<T>>(in, hidden));
    fc2 = this->register_module("fc2", std::make_shared<nn::BasicLinear<T>>(hidden, 1));
  }
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return (*fc2)(zg::tanh((*fc1)(x))); }
  std::string type_name() const override { return "Critic"; }
  nn::AnyModule rebuild(nn::Dtype dtype) const override { return nn::rebuild<Critic>(dtype, in, hidden); }
};

// A float module written without rebuild().
struct Plain : nn::Module {
  std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
  Variable forward(const Variable& x) override { return (*fc)(x); }
  std::string type_name() const override { return "Plain"; }
};

// x * w with a wrong gradient for w (twice the true one), as a user's op
// with a bug would have.
struct BadScale {
  std::string name() const { return "BadScale"; }
  template <class T> Outputs<T> forward(const TensorList<T>& x) const { return x[0] * x[1]; }
  template <class T> Variables<T> backward(const Function<T>& self, const Variables<T>& gy) const {
    return {gy[0] * self.input(1), gy[0] * self.input(0) * T(2)};
  }
};
struct Gate : nn::Module64 {
  Variable64 w = register_parameter("w", uniform({2, 3}, 0.5, 1.5, 7));
  Variable64 forward(const Variable64& x) override { return zg::call(BadScale{}, x, w); }
  std::string type_name() const override { return "Gate"; }
};

// Every kind of built-in layer with parameters or buffers, and most without.
std::shared_ptr<nn::Sequential> conv_model() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(3),
      std::make_shared<nn::LeakyReLU>(0.1), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::ConvTranspose2d>(3, 2, 2, 2), std::make_shared<nn::GELU>(true),
      std::make_shared<nn::AvgPool2d>(2), std::make_shared<nn::AdaptiveAvgPool2d>(Shape{2, 2}),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::LayerNorm>(Shape{8}), std::make_shared<nn::SiLU>(),
      std::make_shared<nn::Linear>(8, 5), std::make_shared<nn::Softplus>(2.0), std::make_shared<nn::Dropout>(0.3),
      std::make_shared<nn::Linear>(5, 4), std::make_shared<nn::Tanh>(), std::make_shared<nn::Sigmoid>(),
      std::make_shared<nn::Identity>(), std::make_shared<nn::Softmax>()});
}

template <class A, class B>
void check_same_state(const nn::BasicModule<A>& a, const nn::BasicModule<B>& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  const auto ba = a.named_buffers();
  const auto bb = b.named_buffers();
  pa.insert(pa.end(), ba.begin(), ba.end());
  pb.insert(pb.end(), bb.begin(), bb.end());
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(pa[i].first == pb[i].first);
    REQUIRE(pa[i].second.shape() == pb[i].second.shape());
    for (std::size_t j = 0; j < pa[i].second.size(); ++j)
      REQUIRE(double(pa[i].second.data().data()[j]) == double(pb[i].second.data().data()[j]));
  }
}

}  // namespace

TEST_CASE("Module::to<double>: same submodules, values, buffers and modes, and no random numbers drawn") {
  manual_seed(3);
  auto model = conv_model();
  Variable x = uniform({4, 2, 4, 4}, 0.1, 1.0, 1, true).to<float>();
  {  // running statistics away from their initial values
    NoGradGuard no_grad;
    (*model)(x);
  }
  (*model)[13]->eval();  // one submodule in eval mode: its flag is copied
  Generator before = generator();
  auto model64 = model->to<double>();
  CHECK(generator() == before);
  CHECK(model64->summary() == model->summary());
  check_same_state(*model, *model64);
  auto mine = model->named_modules();
  auto theirs = model64->named_modules();
  REQUIRE(mine.size() == theirs.size());
  for (std::size_t i = 0; i < mine.size(); ++i) CHECK(mine[i].second->is_training() == theirs[i].second->is_training());
  CHECK(!theirs[14].second->is_training());

  SUBCASE("the copy computes what the float model computes, in double") {
    model->eval();
    model64->eval();
    NoGradGuard no_grad;
    Variable y = (*model)(x);
    Variable64 y64 = (*model64)(x.to<double>());
    REQUIRE(y.shape() == y64.shape());
    for (std::size_t i = 0; i < y.size(); ++i)
      CHECK(double(y.data().data()[i]) == doctest::Approx(y64.data().data()[i]).epsilon(1e-5));
  }
  SUBCASE("the copy is independent, and to<float>() brings the values back exactly") {
    model64->named_parameters()[0].second.data().fill(7.0);
    CHECK(model->named_parameters()[0].second.data().data()[0] != 7.0f);
    auto back = model->to<double>()->to<float>();
    check_same_state(*model, *back);
    CHECK(back->type_name() == "Sequential");
  }
}

TEST_CASE("Module::to<double> on the book's models, MLP options, containers and a custom template module") {
  SUBCASE("deep_conv_net") {
    auto net = nn::models::deep_conv_net();
    auto net64 = net->to<double>();
    check_same_state(*net, *net64);
    CHECK(net64->parameter_count() == net->parameter_count());
  }
  SUBCASE("MLP with BatchNorm and Dropout keeps its type") {
    nn::MLPOptions o;
    o.activation = "tanh";
    o.batch_norm = true;
    o.dropout = 0.2;
    auto mlp = std::make_shared<nn::MLP>(6, std::vector<std::size_t>{5, 4}, 3, o);
    auto mlp64 = mlp->to<double>();
    CHECK(mlp64->type_name() == "MLP");
    CHECK(mlp64->summary() == mlp->summary());
    check_same_state(*mlp, *mlp64);
  }
  SUBCASE("ModuleList, ModuleDict and Embedding") {
    nn::ModuleDict dict{{"emb", std::make_shared<nn::Embedding>(5, 3, -1)},
                        {"list", std::make_shared<nn::ModuleList>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                     std::make_shared<nn::BatchNorm1d>(3), std::make_shared<nn::ReLU>()})}};
    auto dict64 = dict.to<double>();
    CHECK(dict64->summary() == dict.summary());
    check_same_state(dict, *dict64);
  }
  SUBCASE("a custom module with rebuild()") {
    Critic<float> critic(4, 6);
    auto critic64 = critic.to<double>();
    CHECK(critic64->type_name() == "Critic");
    check_same_state(critic, *critic64);
    CHECK(dynamic_cast<Critic<double>*>(critic64.get()) != nullptr);
  }
}

TEST_CASE("Module::to and copy_state_from: errors name the module and every difference") {
  SUBCASE("a module without rebuild()") {
    Plain plain;
    const std::string msg = message_of<ValueError>([&] { plain.to<double>(); });
    CHECK(msg.find("Plain") != std::string::npos);
    CHECK(msg.find("rebuild") != std::string::npos);
    CHECK(msg.find("copy_state_from") != std::string::npos);
    CHECK_THROWS_AS(plain.to<double>(), ValueError);
  }
  SUBCASE("a module registered twice (shared weights) is refused, not silently unshared") {
    auto shared = std::make_shared<nn::Linear>(3, 3);
    nn::Sequential seq{shared, std::make_shared<nn::Tanh>(), shared};
    const std::string msg = message_of<ValueError>([&] { seq.to<double>(); });
    CHECK(msg.find("Sequential::rebuild made a module with other submodules") != std::string::npos);
  }
  SUBCASE("different names and shapes: nothing is copied") {
    Critic<double> small(4, 6), big(4, 7);
    const double before = small.fc1->weight.data().data()[0];
    const std::string msg = message_of<ValueError>([&] { small.copy_state_from(big); });
    CHECK(msg.find("Critic<float64>::copy_state_from(Critic<float64>)") != std::string::npos);
    CHECK(msg.find("'fc1.weight' has shape (4, 7) there and (4, 6) here") != std::string::npos);
    CHECK(msg.find("'fc2.weight' has shape (7, 1) there and (6, 1) here") != std::string::npos);
    CHECK(small.fc1->weight.data().data()[0] == before);
    Plain plain;
    const std::string missing = message_of<ValueError>([&] { small.copy_state_from(plain); });
    CHECK(missing.find("'fc1.weight' is missing from Plain") != std::string::npos);
    CHECK(missing.find("'fc.bias' is not in Critic") != std::string::npos);
  }
  SUBCASE("a trained float module copied into one built in double") {
    Critic<float> critic(3, 2);
    Critic<double> critic64(3, 2);
    critic64.copy_state_from(critic);
    check_same_state(critic, critic64);
  }
}

TEST_CASE("nn::gradcheck: every built-in layer in one model, in train mode with BatchNorm and Dropout") {
  manual_seed(5);
  auto model64 = conv_model()->to<double>();
  Variable64 x = uniform({3, 2, 4, 4}, 0.1, 1.0, 2, true);
  auto values = [&] {
    std::vector<Tensor<double>> out;
    for (const auto& [name, v] : model64->named_parameters()) out.push_back(v.data());
    for (const auto& [name, v] : model64->named_buffers()) out.push_back(v.data());
    return out;
  };
  const auto before = values();
  const Generator generator_before = generator();
  nn::ModuleGradcheckOptions o;
  auto report = nn::gradcheck(*model64, x, o);
  INFO(report);
  CHECK(report.passed);
  std::size_t elements = x.size();
  for (const auto& [name, p] : model64->named_parameters()) elements += p.size();
  CHECK(report.elements_checked == elements);
  CHECK(report.max_abs_error < 1e-7);

  SUBCASE("the module, its gradients and the generator are as before") {
    const auto after = values();
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] == before[i]);
    for (const auto& p : model64->parameters()) CHECK(!p.grad().defined());
    CHECK(generator() == generator_before);
  }
  SUBCASE("eval mode, and a sample of the elements") {
    model64->eval();
    o.max_elements_per_input = 3;
    auto sampled = nn::gradcheck(*model64, x, o);
    INFO(sampled);
    CHECK(sampled.passed);
    std::size_t sampled_elements = 3;  // of the input
    for (const auto& [name, p] : model64->named_parameters()) sampled_elements += std::min<std::size_t>(p.size(), 3);
    CHECK(sampled_elements < 3 * (1 + model64->named_parameters().size()));  // a tensor of 2 is all checked
    CHECK(sampled.elements_checked == sampled_elements);
  }
}

TEST_CASE("nn::gradcheck: float modules through to<double>, custom modules, Embedding without the input") {
  SUBCASE("the book's MLP with BatchNorm and Dropout, given as float") {
    nn::MLPOptions o;
    o.batch_norm = true;
    o.dropout = 0.25;
    nn::MLP mlp(5, {6, 4}, 3, o);
    auto report = nn::gradcheck(mlp, uniform({6, 5}, 0.2, 1.0, 3, true).to<float>());
    INFO(report);
    CHECK(report.passed);
  }
  SUBCASE("a custom template module") {
    Critic<double> critic(4, 5);
    auto report = nn::gradcheck(critic, uniform({3, 4}, 0.1, 1.0, 4, true));
    INFO(report);
    CHECK(report.passed);
  }
  SUBCASE("Embedding: index input, so only the weight is checked") {
    nn::BasicEmbedding<double> emb(6, 3, 2);
    Variable64 idx(Tensor<double>({{0., 3., 5.}, {5., 1., 1.}}));  // not the padding row 2
    nn::ModuleGradcheckOptions o;
    o.check_input = false;
    auto report = nn::gradcheck(emb, idx, o);
    INFO(report);
    CHECK(report.passed);
    CHECK(report.elements_checked == 18);
  }
}

TEST_CASE("nn::gradcheck: the tour's SimpleConvNet, 20 elements of each tensor") {
  manual_seed(11);
  auto net64 = nn::models::simple_conv_net()->to<double>();
  Variable64 x = uniform({2, 1, 28, 28}, 0.0, 1.0, 9);
  nn::ModuleGradcheckOptions o;
  o.max_elements_per_input = 20;
  auto report = nn::gradcheck(*net64, x, o);
  INFO(report);
  CHECK(report.passed);
  CHECK(report.elements_checked == 130);  // 20 of each, and fc2.bias's 10
}

TEST_CASE("nn::gradcheck finds a wrong backward and names the parameter, and its errors") {
  Gate gate;
  Variable64 x = uniform({2, 3}, 0.5, 1.5, 8);
  auto report = nn::gradcheck(gate, x);
  CHECK(!report.passed);
  CHECK(report.worst_name == "w");
  CHECK(report.analytic == doctest::Approx(2 * report.numeric));
  std::ostringstream text;
  text << report;
  CHECK(text.str().find("(w)") != std::string::npos);

  SUBCASE("the input's gradient alone is right") {
    gate.w.requires_grad_(false);
    auto input_only = nn::gradcheck(gate, x);
    INFO(input_only);
    CHECK(input_only.passed);
    CHECK(input_only.elements_checked == 6);
  }
  SUBCASE("nothing to check") {
    nn::BasicReLU<double> relu;
    nn::ModuleGradcheckOptions o;
    o.check_input = false;
    const std::string msg = message_of<ValueError>([&] { nn::gradcheck(relu, x, o); });
    CHECK(msg.find("nn::gradcheck(ReLU): nothing to check") != std::string::npos);
  }
}
