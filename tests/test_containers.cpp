// ModuleList, ModuleDict, named_modules() and apply() (nn/src/containers.cpp).
#include <zerograd/nn.hpp>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;

namespace {

// A custom model holding a ModuleList and a ModuleDict, as users write them.
struct Net : nn::Module {
  std::shared_ptr<nn::ModuleList> blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  std::shared_ptr<nn::ModuleDict> heads = register_module("heads", std::make_shared<nn::ModuleDict>());
  Net() {
    blocks->push_back(std::make_shared<nn::Linear>(3, 4)).push_back(std::make_shared<nn::Linear>(4, 4));
    heads->insert("cls", std::make_shared<nn::Linear>(4, 2)).insert("reg", std::make_shared<nn::Linear>(4, 1));
  }
  Variable forward(const Variable& x) override {
    Variable h = x;
    for (const auto& b : *blocks) h = zg::relu((*b)(h));
    return (*(*heads)["cls"])(h);
  }
  std::string type_name() const override { return "Net"; }
};

}  // namespace

TEST_CASE("ModuleList and ModuleDict register their modules' parameters under dotted names") {
  Net net;
  std::vector<std::string> names;
  for (const auto& [name, v] : net.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                                          "heads.cls.weight", "heads.cls.bias", "heads.reg.weight",
                                          "heads.reg.bias"});
  CHECK(net.blocks->size() == 2);
  CHECK(net.heads->keys() == std::vector<std::string>{"cls", "reg"});
  CHECK(net.heads->contains("reg"));
  CHECK(!net.heads->contains("x"));
  Variable y = net(Variable(Tensor<float>(xt::ones<float>({5, 3}))));
  CHECK(y.shape() == Shape{5, 2});
  zg::sum(y).backward();
  CHECK(net.blocks->operator[](0)->parameters()[0].grad().defined());
  CHECK(!(*net.heads)["reg"]->parameters()[0].grad().defined());  // not on the path

  nn::ModuleList list{std::make_shared<nn::ReLU>(), std::make_shared<nn::Tanh>()};
  CHECK(list.size() == 2);
  CHECK(list[1]->type_name() == "Tanh");
  nn::ModuleDict dict{{"a", std::make_shared<nn::ReLU>()}};
  CHECK(dict["a"]->type_name() == "ReLU");
}

TEST_CASE("ModuleList and ModuleDict: errors name the index, the key and what is held") {
  Net net;
  CHECK(message_of<ValueError>([&] { (*net.blocks)[2]; }) == "ModuleList: index 2 is out of range for 2 modules");
  CHECK(message_of<ValueError>([&] { (*net.heads)["box"]; }) == "ModuleDict: no module named 'box' (has: cls, reg)");
  CHECK(message_of<ValueError>([&] { net.heads->insert("cls", std::make_shared<nn::ReLU>()); }) ==
        "ModuleDict: name 'cls' is already taken");
  CHECK(message_of<ValueError>([&] { net.heads->insert("a.b", std::make_shared<nn::ReLU>()); }) ==
        "ModuleDict: name 'a.b' must be non-empty and contain no '.'");
  CHECK(message_of<ValueError>([&] { net.blocks->push_back(nullptr); }) ==
        "ModuleList: register_module('2') got a null module");
  CHECK(net.blocks->size() == 2);
  CHECK(message_of<ValueError>([&] { (*net.blocks)(Variable(1.f)); }) ==
        "ModuleList: has no forward; call its modules (2 of them)");
  CHECK(message_of<ValueError>([&] { (*net.heads)(Variable(1.f)); }).find("ModuleDict: has no forward") == 0);
}

TEST_CASE("named_modules: self first, depth first, a shared module once") {
  Net net;
  auto shared = std::make_shared<nn::ReLU>();
  net.blocks->push_back(shared).push_back(shared);
  std::vector<std::string> got;
  for (const auto& [name, m] : net.named_modules()) got.push_back(name + ":" + m->type_name());
  CHECK(got == std::vector<std::string>{":Net", "blocks:ModuleList", "blocks.0:Linear", "blocks.1:Linear",
                                        "blocks.2:ReLU", "heads:ModuleDict", "heads.cls:Linear", "heads.reg:Linear"});
  CHECK(net.named_modules()[0].second == &net);
}

TEST_CASE("apply: children before parents, in registration order, and it can re-initialise weights") {
  Net net;
  std::vector<std::string> order;
  net.apply([&](nn::Module& m) { order.push_back(m.type_name()); });
  CHECK(order == std::vector<std::string>{"Linear", "Linear", "ModuleList", "Linear", "Linear", "ModuleDict", "Net"});
  net.apply([](nn::Module& m) {
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) lin->weight.data().fill(0.5f);
  });
  for (const auto& [name, v] : net.named_parameters())
    if (name.find("weight") != std::string::npos) CHECK(v.data()(0, 0) == 0.5f);
  CHECK(&net.apply([](nn::Module&) {}) == &net);
}
