// Training resumes exactly from one .npz holding the model and the optimizer:
// 2N steps == N steps, save, load into new objects, N steps (bit-identical).
#include <filesystem>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace fs = std::filesystem;

namespace {

struct Run {
  std::shared_ptr<nn::MLP> model;
  std::unique_ptr<optim::Adam> adam;
  std::unique_ptr<optim::LRScheduler> schedule;
  explicit Run(unsigned seed) {
    zg::manual_seed(seed);
    nn::MLPOptions o;
    o.batch_norm = true;
    model = std::make_shared<nn::MLP>(4, std::vector<std::size_t>{6}, 3, o);
    adam = std::make_unique<optim::Adam>(model->parameters(), 0.01f);
    adam->set_weight_decay(0.01f);
    schedule = std::make_unique<optim::LRScheduler>(*adam, optim::StepLR(3, 0.5));
  }
  void steps(int n, int first) {
    for (int i = first; i < first + n; ++i) {
      Tensor<float> x = Tensor<float>::from_shape({8, 4});
      for (std::size_t j = 0; j < x.size(); ++j) x.data()[j] = std::sin(0.37f * float(j + 13 * i));
      Tensor<float> t = Tensor<float>::from_shape({8});
      for (std::size_t j = 0; j < 8; ++j) t(j) = float((j + i) % 3);
      auto loss = nn::functional::softmax_cross_entropy((*model)(Variable(x)), Variable(t));
      loss.backward();
      adam->step();
      adam->zero_grad();
      schedule->step();
    }
  }
  nn::NamedArrays extra() const {
    auto s = adam->state_dict();
    for (auto& e : schedule->state_dict()) s.push_back(e);
    return s;
  }
};

}  // namespace

TEST_CASE("resume from one .npz checkpoint is bit-identical") {
  const fs::path path = fs::temp_directory_path() / "zerograd_resume.npz";
  const int n = 5;
  Run straight(1);
  straight.steps(2 * n, 0);

  Run first(1);
  first.steps(n, 0);
  nn::save_checkpoint(path.string(), *first.model, first.extra());

  Run resumed(99);  // different initial weights: everything must come from the file
  nn::load_checkpoint(path.string(), *resumed.model, [&](const nn::NamedArrays& rest) {
    nn::NamedArrays opt, sched;
    for (const auto& e : rest) (e.first.rfind("scheduler.", 0) == 0 ? sched : opt).push_back(e);
    resumed.adam->load_state_dict(opt);
    resumed.schedule->load_state_dict(sched);
  });
  resumed.steps(n, n);

  auto a = straight.model->state(), b = resumed.model->state();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    CHECK(a[i].second == b[i].second);  // exact equality, not approx
  }
  CHECK(straight.adam->lr() == resumed.adam->lr());
  fs::remove(path);
}
