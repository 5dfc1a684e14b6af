// Recurrent layers and cells (nn/recurrent.hpp) against PyTorch 1.13 in
// float64 (tests/golden/make_recurrent_golden.py), gradient checks,
// truncated backpropagation through time, PyTorch weights, SequenceBatches.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <zerograd/zerograd.hpp>

#include "golden/recurrent_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

namespace {

namespace nn = zg::nn;
namespace G = recurrent_golden;
using golden18::check_close;
using golden18::ramp;
using zg::Shape;
using zg::Tensor;
using zg::Variable;
using zg::Variable64;
using zg::testing::message_of;
using State64 = nn::BasicRecurrentState<double>;

const std::vector<double>& golden(const std::string& name) {
  INFO(name);
  REQUIRE(G::values.count(name) == 1);
  return G::values.at(name);
}

double param_value(std::size_t i, std::size_t j) { return 0.5 * std::sin(0.37 * double(i) + 1.1 * double(j) + 0.2); }

// Sets the parameters as the script does, by PyTorch's names, after checking
// that the module registers the same names in the same order.
template <class T>
void set_parameters(nn::BasicModule<T>& m, const std::string& golden_case) {
  const auto& names = G::names.at(golden_case);
  auto named = m.named_parameters();
  REQUIRE(named.size() == names.size());
  for (std::size_t j = 0; j < names.size(); ++j) {
    CHECK(named[j].first == names[j]);
    Tensor<T>& d = named[j].second.data();
    for (std::size_t i = 0; i < d.size(); ++i) d.data()[i] = static_cast<T>(param_value(i, j));
  }
}

Variable64 input_ramp(const Shape& s) { return ramp(s, [](double i) { return std::sin(0.9 * i + 0.2); }); }
Variable64 h0_ramp(const Shape& s) { return ramp(s, [](double i) { return 0.5 * std::cos(0.6 * i); }); }
Variable64 c0_ramp(const Shape& s) { return ramp(s, [](double i) { return 0.4 * std::sin(1.3 * i); }); }

struct LayerCase {
  std::string name;
  Shape input, state;
  bool with_state = true, grads = true;
};

// The four cases of make_recurrent_golden.py for one layer kind, built by make(options).
template <class Make>
void check_layer_cases(const std::string& kind, bool lstm, Make make) {
  nn::RNNOptions deep(3, 4, 2), single(2, 3), nobias(3, 2), unbatched(3, 4);
  deep.bidirectional = deep.batch_first = true;
  nobias.bias = false;
  unbatched.bidirectional = true;
  const std::vector<std::pair<LayerCase, nn::RNNOptions>> cases = {
      {{"deep", {2, 3, 3}, {4, 2, 4}}, deep},
      {{"single", {4, 3, 2}, {1, 3, 3}}, single},
      {{"nobias", {3, 2, 3}, {1, 2, 2}, false}, nobias},
      {{"unbatched", {3, 3}, {2, 4}, true, false}, unbatched},
  };
  for (const auto& [c, options] : cases) {
    const std::string prefix = kind + "_" + c.name;
    CAPTURE(prefix);
    auto m = make(options);
    set_parameters(*m, prefix);
    Variable64 x = input_ramp(c.input).requires_grad_();
    Variable64 h0 = h0_ramp(c.state).requires_grad_(), c0 = c0_ramp(c.state).requires_grad_();
    State64 state;
    if (c.with_state) state = {h0, lstm ? c0 : Variable64()};
    const auto out = (*m)(x, state);
    check_close(out.output, golden(prefix + "_output"));
    check_close(out.state.h, golden(prefix + "_h_n"));
    CHECK(out.state.c.defined() == lstm);
    if (lstm) check_close(out.state.c, golden(prefix + "_c_n"));
    if (!c.grads) continue;
    auto weigh = [](const Variable64& v, double (*f)(double)) {
      return zg::sum(v * ramp(v.shape(), [f](double i) { return f(i); }));
    };
    Variable64 loss = weigh(out.output, [](double i) { return std::cos(i); }) +
                      weigh(out.state.h, [](double i) { return std::sin(0.5 * i); });
    if (lstm) loss = loss + weigh(out.state.c, [](double i) { return std::cos(0.3 * i); });
    loss.backward();
    check_close(x.grad(), golden(prefix + "_grad_input"));
    if (c.with_state) {
      check_close(h0.grad(), golden(prefix + "_grad_h0"));
      if (lstm) check_close(c0.grad(), golden(prefix + "_grad_c0"));
    }
    for (const auto& [key, p] : m->named_parameters()) {
      const std::string name = key;  // a lambda cannot capture a binding in C++17
      CAPTURE(name);
      check_close(p.grad(), golden(prefix + "_grad_" + name));
    }
  }
}

}  // namespace

TEST_CASE("RNN: outputs, final states and gradients equal PyTorch's, tanh and relu") {
  for (const std::string nonlinearity : {"tanh", "relu"}) {
    check_layer_cases("rnn_" + nonlinearity, false, [&](nn::RNNOptions o) {
      o.nonlinearity = nonlinearity;
      return std::make_shared<nn::BasicRNN<double>>(o);
    });
  }
}

TEST_CASE("LSTM: outputs, final states and gradients equal PyTorch's") {
  check_layer_cases("lstm", true, [](const nn::RNNOptions& o) { return std::make_shared<nn::BasicLSTM<double>>(o); });
}

TEST_CASE("GRU: outputs, final states and gradients equal PyTorch's") {
  check_layer_cases("gru", false, [](const nn::RNNOptions& o) { return std::make_shared<nn::BasicGRU<double>>(o); });
}

TEST_CASE("RNNCell, LSTMCell, GRUCell: one step equals PyTorch's, with gradients") {
  const Shape xs{2, 3}, hs{2, 4};
  auto weigh = [](const Variable64& v, bool sine) {
    return zg::sum(v * ramp(v.shape(), [sine](double i) { return sine ? std::sin(0.5 * i) : std::cos(i); }));
  };
  auto check_grads = [](nn::BasicModule<double>& m, const std::string& prefix) {
    for (const auto& [key, p] : m.named_parameters()) {
      const std::string name = key;  // a lambda cannot capture a binding in C++17
      CAPTURE(name);
      check_close(p.grad(), golden(prefix + "_grad_" + name));
    }
  };
  for (const std::string nonlinearity : {"tanh", "relu"}) {
    const std::string prefix = "rnn_cell_" + nonlinearity;
    CAPTURE(prefix);
    nn::BasicRNNCell<double> cell(3, 4, true, nonlinearity);
    set_parameters(cell, prefix);
    Variable64 x = input_ramp(xs).requires_grad_(), h0 = h0_ramp(hs).requires_grad_();
    Variable64 h = cell(x, h0);
    check_close(h, golden(prefix + "_h"));
    weigh(h, false).backward();
    check_close(x.grad(), golden(prefix + "_grad_input"));
    check_close(h0.grad(), golden(prefix + "_grad_h0"));
    check_grads(cell, prefix);
  }
  SUBCASE("GRUCell") {
    nn::BasicGRUCell<double> cell(3, 4);
    set_parameters(cell, "gru_cell");
    Variable64 x = input_ramp(xs).requires_grad_(), h0 = h0_ramp(hs).requires_grad_();
    Variable64 h = cell(x, h0);
    check_close(h, golden("gru_cell_h"));
    weigh(h, false).backward();
    check_close(x.grad(), golden("gru_cell_grad_input"));
    check_close(h0.grad(), golden("gru_cell_grad_h0"));
    check_grads(cell, "gru_cell");
  }
  SUBCASE("LSTMCell") {
    nn::BasicLSTMCell<double> cell(3, 4);
    set_parameters(cell, "lstm_cell");
    Variable64 x = input_ramp(xs).requires_grad_(), h0 = h0_ramp(hs).requires_grad_(),
               c0 = c0_ramp(hs).requires_grad_();
    const State64 s = cell(x, {h0, c0});
    check_close(s.h, golden("lstm_cell_h"));
    check_close(s.c, golden("lstm_cell_c"));
    (weigh(s.h, false) + weigh(s.c, true)).backward();
    check_close(x.grad(), golden("lstm_cell_grad_input"));
    check_close(h0.grad(), golden("lstm_cell_grad_h0"));
    check_close(c0.grad(), golden("lstm_cell_grad_c0"));
    check_grads(cell, "lstm_cell");
  }
  SUBCASE("unbatched input and a zero state give the batched rows") {
    nn::BasicLSTMCell<double> cell(3, 4);
    const Variable64 x = input_ramp(xs);
    const State64 both = cell(x, {});
    const State64 row = cell(zg::get_item(x, {1}), {});
    CHECK(row.h.shape() == Shape{4});
    check_close(row.h, std::vector<double>(both.h.data().data() + 4, both.h.data().data() + 8), 1e-14);
    nn::BasicGRUCell<double> gru(3, 4);
    const Variable64 rows = gru(x);
    check_close(gru(zg::get_item(x, {1})), std::vector<double>(rows.data().data() + 4, rows.data().data() + 8), 1e-14);
  }
}

TEST_CASE("RNN, LSTM, GRU: nn::gradcheck in float64, also through inter-layer dropout in train mode") {
  zg::manual_seed(3);
  nn::RNNOptions one(3, 4);
  nn::RNNOptions deep(3, 4, 2);
  deep.bidirectional = deep.batch_first = true;
  deep.dropout = 0.3;
  nn::RNNOptions relu = one;
  relu.nonlinearity = "relu";
  const Variable64 x = zg::testing::uniform({3, 2, 3}, 0.1, 1.0, 4, true);
  std::vector<std::shared_ptr<nn::Module64>> layers = {
      std::make_shared<nn::BasicRNN<double>>(one), std::make_shared<nn::BasicRNN<double>>(relu),
      std::make_shared<nn::BasicLSTM<double>>(one), std::make_shared<nn::BasicGRU<double>>(one)};
  for (auto& m : layers) {
    CAPTURE(m->type_name());
    const auto report = nn::gradcheck(*m, x);
    INFO(report);
    CHECK(report.passed);
    CHECK(report.elements_checked == x.size() + m->parameter_count());
  }
  nn::ModuleGradcheckOptions sampled;
  sampled.max_elements_per_input = 6;
  for (auto m : std::vector<std::shared_ptr<nn::Module64>>{std::make_shared<nn::BasicRNN<double>>(nn::RNNOptions(deep)),
                                                           std::make_shared<nn::BasicLSTM<double>>(deep),
                                                           std::make_shared<nn::BasicGRU<double>>(deep)}) {
    CAPTURE(m->type_name());
    const auto report = nn::gradcheck(*m, x, sampled);
    INFO(report);
    CHECK(report.passed);
  }
}

TEST_CASE("LSTM: gradcheck of output and final state in x, h0, c0, and a second-order check of an LSTMCell") {
  zg::manual_seed(4);
  nn::BasicLSTM<double> lstm(nn::LSTMOptions(3, 4));
  const Variable64 x = zg::testing::uniform({3, 2, 3}, 0.1, 1.0, 5, true);
  const Variable64 h0 = zg::testing::uniform({1, 2, 4}, 0.1, 0.8, 6, true);
  const Variable64 c0 = zg::testing::uniform({1, 2, 4}, 0.1, 0.8, 7, true);
  auto report = zg::gradcheck(
      zg::Function64([&](const std::vector<Variable64>& v) {
        const auto out = lstm(v[0], {v[1], v[2]});
        return std::vector<Variable64>{out.output, out.state.h, out.state.c};
      }),
      {x, h0, c0});
  INFO(report);
  CHECK(report.passed);

  nn::BasicLSTMCell<double> cell(3, 2);
  auto second = zg::gradgradcheck(
      [&](const std::vector<Variable64>& v) {
        const State64 s = cell(v[0], {v[1], v[2]});
        return zg::sum(s.h * s.c);
      },
      {zg::get_item(x, {0}), zg::testing::uniform({2, 2}, 0.1, 0.8, 8, true),
       zg::testing::uniform({2, 2}, 0.1, 0.8, 9, true)});
  INFO(second);
  CHECK(second.passed);
}

TEST_CASE("LSTM: truncated BPTT, two chunks with detach equal one pass and no gradient crosses the cut") {
  zg::manual_seed(5);
  nn::LSTMOptions o(3, 4, 2);
  o.batch_first = true;
  nn::BasicLSTM<double> lstm(o);
  Variable64 x1 = zg::testing::uniform({2, 3, 3}, 0.1, 1.0, 10, true).requires_grad_();
  Variable64 x2 = zg::testing::uniform({2, 4, 3}, 0.1, 1.0, 11, true).requires_grad_();
  const auto full = lstm(zg::concat<double>({x1, x2}, 1), {});

  auto first = lstm(x1, {});
  State64 carried = first.state.detach();
  CHECK(!carried.h.creator());
  auto second = lstm(x2, carried);
  const auto joined = zg::concat<double>({first.output, second.output}, 1);
  check_close(joined, std::vector<double>(full.output.data().begin(), full.output.data().end()), 1e-13);
  check_close(second.state.h, std::vector<double>(full.state.h.data().begin(), full.state.h.data().end()), 1e-13);
  check_close(second.state.c, std::vector<double>(full.state.c.data().begin(), full.state.c.data().end()), 1e-13);

  zg::sum(second.output).backward();
  CHECK(x2.grad().defined());
  CHECK(!x1.grad().defined());
  CHECK(!first.state.h.grad().defined());
}

TEST_CASE("LSTM: a PyTorch state_dict in an .npz loads through load_torch_npz as it is and gives PyTorch's output") {
  nn::LSTMOptions o(3, 4, 2);
  o.bidirectional = o.batch_first = true;
  nn::LSTM lstm(o);
  const auto& names = G::names.at("lstm_deep");
  nn::NamedArrays state_dict;
  for (std::size_t j = 0; j < names.size(); ++j) {
    Shape shape;
    for (const auto& [name, p] : lstm.named_parameters())
      if (name == names[j]) shape = p.shape();
    Tensor<float> a = Tensor<float>::from_shape(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = float(param_value(i, j));
    state_dict.emplace_back(names[j], std::move(a));
  }
  const auto dir = zg::testing::empty_dir("recurrent_npz");
  const std::string path = (dir / "lstm.npz").string();
  nn::save_npz(path, state_dict);
  nn::load_torch_npz(path, lstm);
  const nn::RecurrentState state{h0_ramp({4, 2, 4}).to<float>(), c0_ramp({4, 2, 4}).to<float>()};
  const auto out = lstm(input_ramp({2, 3, 3}).to<float>(), state);
  check_close(out.output.to<double>(), golden("lstm_deep_output"), 1e-5);
  check_close(out.state.h.to<double>(), golden("lstm_deep_h_n"), 1e-5);
  CHECK(nn::to_torch_state_dict(lstm).size() == names.size());
  std::filesystem::remove_all(dir);
}

TEST_CASE("RNN, LSTM, GRU: dropout between layers only in train mode, zero state, Sequential, to<double>") {
  zg::manual_seed(6);
  const Variable x = zg::testing::uniform({5, 2, 3}, 0.1, 1.0, 12, true).to<float>();
  SUBCASE("dropout acts between layers in train mode only") {
    nn::LSTMOptions o(3, 4, 2);
    o.dropout = 0.5;
    nn::LSTM lstm(o);
    lstm.eval();
    const Tensor<float> eval_out = lstm(x).data();
    lstm.train();
    CHECK(lstm(x).data() != eval_out);
    nn::LSTMOptions one = o;
    one.num_layers = 1;
    nn::LSTM single(one);  // one layer: nothing to drop
    const Tensor<float> train_out = single(x).data();
    single.eval();
    CHECK(single(x).data() == train_out);
  }
  SUBCASE("an empty state is the zero state") {
    nn::GRU gru(3, 4, 2);
    const Variable zeros(Tensor<float>(xt::zeros<float>({2, 2, 4})));
    CHECK(gru(x, {}).output.data() == gru(x, {zeros, {}}).output.data());
    CHECK(gru(x).data() == gru(x, {}).output.data());
  }
  SUBCASE("in a Sequential, and converted to double") {
    nn::RNNOptions o(3, 4);
    o.nonlinearity = "relu";
    o.bidirectional = true;
    auto rnn = std::make_shared<nn::RNN>(o);
    nn::Sequential seq{rnn, std::make_shared<nn::Tanh>()};
    CHECK(seq(x).shape() == Shape{5, 2, 8});
    CHECK(rnn->extra_repr() == "input_size=3, hidden_size=4, nonlinearity='relu', bidirectional=true");
    auto copy = rnn->to<double>();
    CHECK(copy->type_name() == "RNN");
    CHECK(copy->extra_repr() == rnn->extra_repr());
    const Variable64 y = (*rnn)(x).to<double>();
    check_close((*copy)(x.to<double>()), std::vector<double>(y.data().begin(), y.data().end()), 1e-6);
    CHECK(nn::LSTMCell(3, 4).to<double>()->extra_repr() == "input_size=3, hidden_size=4");
  }
  SUBCASE("every parameter starts in [-1/sqrt(H), 1/sqrt(H)]") {
    nn::GRU gru(3, 16, 2);
    for (const auto& p : gru.parameters())
      for (float v : p.data()) CHECK(std::abs(v) <= 0.25f);
  }
}

TEST_CASE("RNN, LSTM, GRU: errors name the layer and the shapes") {
  nn::LSTMOptions o(3, 4, 2);
  nn::LSTM lstm(o);
  const Variable x(Tensor<float>(xt::zeros<float>({5, 2, 3})));
  auto shape_error = [](auto&& f) { return message_of<zg::ShapeError>(f); };
  auto value_error = [](auto&& f) { return message_of<zg::ValueError>(f); };
  CHECK(shape_error([&] { lstm(Variable(Tensor<float>(xt::zeros<float>({5, 2, 3, 1})))); }) ==
        "LSTM(input_size=3, hidden_size=4, num_layers=2): expected input (T, B, 3) or unbatched (T, 3), got "
        "(5, 2, 3, 1)");
  CHECK(shape_error([&] { lstm(Variable(Tensor<float>(xt::zeros<float>({5, 2, 2})))); }).find("got (5, 2, 2)") !=
        std::string::npos);
  CHECK(shape_error([&] { lstm(Variable(Tensor<float>(xt::zeros<float>({0, 2, 3})))); }) ==
        "LSTM(input_size=3, hidden_size=4, num_layers=2): input (0, 2, 3) is an empty sequence (T = 0)");
  const Variable h(Tensor<float>(xt::zeros<float>({1, 2, 4})));
  CHECK(shape_error([&] { lstm(x, {h, h}); }) ==
        "LSTM(input_size=3, hidden_size=4, num_layers=2): expected initial state (2, 2, 4) for input (5, 2, 3), got "
        "(1, 2, 4)");
  CHECK(value_error([&] { lstm(x, {h, {}}); }).find("give both h and c") != std::string::npos);
  nn::GRU gru(3, 4);
  CHECK(value_error([&] { gru(x, {h, h}); }).find("GRU(input_size=3, hidden_size=4): only an LSTM has a cell state") ==
        0);
  CHECK(value_error([] { nn::LSTM(3, 0); }) ==
        "LSTM: input_size and hidden_size must be positive, got input_size=3, hidden_size=0");
  CHECK(value_error([] { nn::GRU(3, 4, 0); }) == "GRU: num_layers must be at least 1");
  nn::RNNOptions bad(3, 4);
  bad.nonlinearity = "sigmoid";
  CHECK(value_error([&] { nn::RNN{bad}; }) == "RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'");
  bad.nonlinearity = "tanh";
  bad.dropout = 1;
  CHECK(value_error([&] { nn::RNN{bad}; }) == "RNN: dropout must be in [0, 1), got 1");
  CHECK(value_error([] { nn::GRUCell(0, 4); }).find("GRUCell: input_size and hidden_size must be positive") == 0);
  nn::LSTMCell cell(3, 4);
  CHECK(shape_error([&] { cell(Variable(Tensor<float>(xt::zeros<float>({2, 5}))), {}); }) ==
        "LSTMCell(input_size=3, hidden_size=4): expected input (B, 3) or (3), got (2, 5)");
  CHECK(shape_error([&] { nn::RNNCell(3, 4)(Variable(Tensor<float>(xt::zeros<float>({2, 3}))), h); }) ==
        "RNNCell(input_size=3, hidden_size=4): expected state (2, 4) for input (2, 3), got (1, 2, 4)");
  nn::LSTMOptions first(3, 4);
  first.batch_first = true;
  CHECK(shape_error([&] { nn::LSTM{first}(Variable(Tensor<float>(xt::zeros<float>({2, 0, 3})))); })
            .find("is an empty sequence (T = 0)") != std::string::npos);
}

TEST_CASE("SequenceBatches: contiguous windows per row, targets one token on, continuing across batches") {
  std::vector<std::size_t> tokens(23);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = i;
  // 2 rows of 11 (token 22 unread): 0..10 and 11..21; windows of 4, 4 and 2.
  nn::data::SequenceBatches batches(tokens, 2, 4);
  CHECK(batches.row_length() == 11);
  CHECK(batches.batches_per_epoch() == 3);
  nn::data::SequenceBatches::Batch b;
  std::vector<std::vector<float>> xs, ys;
  while (batches.next(b)) {
    xs.emplace_back(b.x.data().begin(), b.x.data().end());
    ys.emplace_back(b.y.data().begin(), b.y.data().end());
    CHECK(b.x.shape() == b.y.shape());
  }
  REQUIRE(xs.size() == 3);
  CHECK(xs[0] == std::vector<float>{0, 1, 2, 3, 11, 12, 13, 14});
  CHECK(ys[0] == std::vector<float>{1, 2, 3, 4, 12, 13, 14, 15});
  CHECK(xs[1] == std::vector<float>{4, 5, 6, 7, 15, 16, 17, 18});
  CHECK(xs[2] == std::vector<float>{8, 9, 19, 20});
  CHECK(ys[2] == std::vector<float>{9, 10, 20, 21});
  CHECK(batches.cursor() == 10);
  CHECK(!batches.next(b));

  batches.reset();
  REQUIRE(batches.next(b));
  CHECK(b.x.shape() == Shape{2, 4});
  batches.restore(8);
  REQUIRE(batches.next(b));
  CHECK(b.x.shape() == Shape{2, 2});

  nn::data::SequenceBatches full(tokens, 2, 4, true);
  CHECK(full.batches_per_epoch() == 2);
  std::size_t n = 0;
  while (full.next(b)) ++n;
  CHECK(n == 2);

  auto error = [](auto&& f) { return message_of<zg::ValueError>(f); };
  CHECK(error([&] { nn::data::SequenceBatches(tokens, 0, 4); }) ==
        "SequenceBatches(batch_size=0, bptt=4): batch_size and bptt must be positive");
  CHECK(error([&] { nn::data::SequenceBatches(tokens, 2, 0); }).find("must be positive") != std::string::npos);
  CHECK(error([&] { nn::data::SequenceBatches(tokens, 12, 4); }) ==
        "SequenceBatches(batch_size=12, bptt=4): a sequence of 23 tokens gives rows of 1, fewer than the 2 a window "
        "and its targets need");
  CHECK(error([&] { nn::data::SequenceBatches(tokens, 2, 11, true); }).find("fewer than the 12") != std::string::npos);
  CHECK(error([&] { batches.restore(3); }).find("is neither a window start") != std::string::npos);
  CHECK(error([&] { nn::data::SequenceBatches({1, 2, std::size_t{1} << 24, 3}, 1, 2); })
            .find("is not below 2^24") != std::string::npos);
}

TEST_CASE("LSTM: a language-model step on SequenceBatches with the state carried and detached") {
  zg::manual_seed(7);
  std::vector<std::size_t> tokens(61);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = (i * 7) % 5;
  nn::data::SequenceBatches batches(tokens, 3, 5);
  nn::Embedding embed(5, 4);
  nn::LSTMOptions o(4, 6);
  o.batch_first = true;
  nn::LSTM lstm(o);
  nn::Linear head(6, 5);
  nn::RecurrentState state;
  nn::data::SequenceBatches::Batch b;
  std::size_t steps = 0;
  while (batches.next(b)) {
    const auto out = lstm(embed(b.x), state);
    state = out.state.detach();  // truncated BPTT: the next batch continues each row
    const std::size_t rows = b.x.shape()[0] * b.x.shape()[1];
    Variable loss = nn::functional::cross_entropy(head(zg::reshape(out.output, {rows, 6})), zg::reshape(b.y, {rows}));
    loss.backward();
    CHECK(std::isfinite(loss.item()));
    CHECK(lstm.named_parameters()[0].second.grad().defined());
    ++steps;
  }
  CHECK(steps == batches.batches_per_epoch());
}
