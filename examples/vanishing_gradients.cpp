// The sequel's lesson on why plain RNNs are hard to train: the gradient of a
// loss at the last step with respect to each earlier hidden state h_t, as it
// flows back through T steps. Backward through a tanh RNN step multiplies by
// diag(tanh') W_hh^T, so over k steps the norm scales roughly like the k-th
// power of W_hh's gain: it vanishes when the gain is small and explodes when
// it is large. Clipping caps the explosion; an LSTM's cell path, multiplied
// elementwise by the forget gate instead of by a matrix, does neither.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli.hpp"

#include "training.hpp"

namespace fs = std::filesystem;
using namespace zg;

namespace {

struct Config {
  std::size_t steps = 50, hidden = 64, input = 16, batch = 8;
  double small_gain = 0.5, large_gain = 4.0, clip = 1.0, forget_bias = 2.0;
  std::uint64_t seed = 1;
  std::string out = "out/vanishing_gradients";
};

// norms[k] = || d loss / d h_{T-k} ||, k = 0 .. T, recorded by a hook on each
// h_t as backward passes it. With clip > 0 the hook rescales a gradient whose
// norm exceeds clip before it flows on to earlier steps and records the
// clipped norm: the gradient the step's weights then get.
struct Recorder {
  std::vector<double> norms;
  void watch(const Variable& h, std::size_t k, double clip) {
    h.register_hook([this, k, clip](const Variable& g) -> Variable {
      double sq = 0;
      for (float v : g.data()) sq += double(v) * double(v);
      const double n = std::sqrt(sq);
      if (clip > 0 && n > clip) {
        norms[k] = clip;
        return g * static_cast<float>(clip / n);
      }
      norms[k] = n;
      return {};
    });
  }
};

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::vector<Variable> inputs(const Config& c) {
  std::vector<Variable> xs;
  for (std::size_t t = 0; t < c.steps; ++t) xs.push_back(randn<float>({c.batch, c.input}));
  return xs;
}

// A tanh RNN with W_hh ~ N(0, gain^2 / H): for large H its largest
// singular value is about 2 gain, and a typical direction is scaled by gain.
std::vector<double> rnn_gradients(const Config& c, double gain, double clip, const std::vector<Variable>& xs) {
  nn::RNNCell cell(c.input, c.hidden);
  cell.weight_hh.data() = randn<float>({c.hidden, c.hidden}).data() * static_cast<float>(gain / std::sqrt(double(c.hidden)));
  Recorder r;
  r.norms.assign(c.steps + 1, 0);
  Variable h = zeros<float>({c.batch, c.hidden});
  for (std::size_t t = 0; t < c.steps; ++t) {
    h = cell(xs[t], h);
    r.watch(h, c.steps - 1 - t, clip);
  }
  sum(h).backward();
  r.norms.pop_back();
  return r.norms;
}

std::vector<double> lstm_gradients(const Config& c, const std::vector<Variable>& xs) {
  nn::LSTMCell cell(c.input, c.hidden);
  // A forget gate that starts mostly open (Jozefowicz et al. 2015): with
  // PyTorch's default init sigmoid(f) is about 0.5 and the cell forgets fast.
  for (std::size_t i = c.hidden; i < 2 * c.hidden; ++i) cell.bias_ih.data()(i) = static_cast<float>(c.forget_bias);
  Recorder r;
  r.norms.assign(c.steps + 1, 0);
  nn::RecurrentState s{zeros<float>({c.batch, c.hidden}), zeros<float>({c.batch, c.hidden})};
  for (std::size_t t = 0; t < c.steps; ++t) {
    s = cell(xs[t], s);
    r.watch(s.h, c.steps - 1 - t, 0);
  }
  sum(s.h).backward();
  r.norms.pop_back();
  return r.norms;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  cli::App app{"How the gradient of the last step's loss flows back through T steps: a tanh RNN with a small\n"
               "and with a large recurrent weight (vanishing, exploding), the large one with the gradient\n"
               "clipped as it passes each step, and an LSTM. Prints a table and draws gradients.png."};
  app.add_option("--steps", c.steps, "Time steps T")->check(cli::Range(2, 10000))->capture_default_str();
  app.add_option("--hidden", c.hidden, "Hidden size H")->check(cli::Range(1, 4096))->capture_default_str();
  app.add_option("--small-gain", c.small_gain, "W_hh ~ N(0, gain^2 / H) for the vanishing RNN")
      ->check(cli::PositiveNumber)->capture_default_str();
  app.add_option("--large-gain", c.large_gain, "... and for the exploding RNN")->check(cli::PositiveNumber)
      ->capture_default_str();
  app.add_option("--clip", c.clip, "Largest gradient norm let through each step in the clipped run")
      ->check(cli::PositiveNumber)->capture_default_str();
  app.add_option("--forget-bias", c.forget_bias, "The LSTM's forget-gate bias at the start")->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the random weights and inputs")->capture_default_str();
  app.add_option("--out", c.out, "Directory for gradients.png")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::manual_seed(c.seed);
    fs::create_directories(c.out);
    const auto xs = inputs(c);
    const std::vector<std::pair<std::string, std::vector<double>>> curves = {
        {"RNN, gain " + number(c.small_gain), rnn_gradients(c, c.small_gain, 0, xs)},
        {"RNN, gain " + number(c.large_gain), rnn_gradients(c, c.large_gain, 0, xs)},
        {"RNN, gain " + number(c.large_gain) + ", clipped to " + number(c.clip),
         rnn_gradients(c, c.large_gain, c.clip, xs)},
        {"LSTM, forget bias " + number(c.forget_bias), lstm_gradients(c, xs)}};

    std::cout << "|| d sum(h_T) / d h_(T-k) || over " << c.steps << " steps, H = " << c.hidden << ", batch "
              << c.batch << "\n\n" << std::setw(4) << "k";
    for (const auto& [name, v] : curves) std::cout << std::setw(28) << name;
    std::cout << "\n";
    const std::size_t every = std::max<std::size_t>(1, c.steps / 10);
    for (std::size_t k = 0; k < c.steps; ++k) {
      if (k % every != 0 && k + 1 != c.steps) continue;
      std::cout << std::setw(4) << k;
      for (const auto& [name, v] : curves) std::cout << std::setw(28) << std::scientific << std::setprecision(3) << v[k];
      std::cout << "\n";
    }
    std::vector<examples::Series> series;
    for (const auto& [name, v] : curves) {
      examples::Series s{name, {}};
      for (std::size_t k = 0; k < v.size(); ++k)
        if (v[k] > 0) s.points.emplace_back(double(k), v[k]);  // a log axis has no 0
      series.push_back(s);
    }
    const std::string png = (fs::path(c.out) / "gradients.png").string();
    examples::report_plot(examples::plot_lines(png, series,
                                               {"gradient flowing back through a recurrent network",
                                                "steps back from the last step (k)", "gradient norm at step T - k", true,
                                                false, 0, double(c.steps - 1), "bottom left"}),
                          png);
  } catch (const std::exception& e) {
    std::cerr << "vanishing_gradients: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
