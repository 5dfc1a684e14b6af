// The sequel's seq2seq lesson: an encoder LSTM reads "16+75", a decoder LSTM
// writes "91" one character at a time. Four variants side by side: the
// plain encoder-decoder, the same with the question reversed (the first
// digits the decoder writes then sit near the last steps the encoder
// read), Peeky decoding (the encoder's final h also enters every decoder
// step and the output layer, not only the decoder's first state), and both
// together, as in the book's figure. Accuracy (every character of the
// answer right, greedy decoding) per epoch is plotted for the four.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include <CLI/CLI.hpp>

#include "training.hpp"

namespace fs = std::filesystem;
using namespace zg;

namespace {

const std::string kChars = "0123456789+ _";  // '_' starts an answer, ' ' pads
constexpr std::size_t kQuestion = 7;          // "999+999"
constexpr std::size_t kAnswer = 5;            // "_1998"

std::size_t id(char ch) { return kChars.find(ch); }

struct Problems {
  std::vector<std::string> questions, answers;  // padded: 7 and 5 characters
};

// a + b with a, b uniform in [0, 999], from a generator of its own so that
// the data are the same for the four models.
Problems make_problems(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> number(0, 999);
  Problems p;
  for (std::size_t i = 0; i < n; ++i) {
    const int a = number(gen), b = number(gen);
    std::string q = std::to_string(a) + "+" + std::to_string(b), ans = "_" + std::to_string(a + b);
    q.resize(kQuestion, ' ');
    ans.resize(kAnswer, ' ');
    p.questions.push_back(q);
    p.answers.push_back(ans);
  }
  return p;
}

Variable encode(const std::vector<std::string>& rows, std::size_t first, std::size_t count, std::size_t from,
                std::size_t length, bool reverse) {
  Tensor<float> t = Tensor<float>::from_shape({count, length});
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t k = 0; k < length; ++k) {
      const std::string& s = rows[first + i];
      t(i, k) = static_cast<float>(id(s[from + (reverse ? length - 1 - k : k)]));
    }
  return Variable(t);
}

class Seq2Seq : public nn::Module {
 public:
  Seq2Seq(std::size_t embed, std::size_t hidden, bool peeky) : hidden_(hidden), peeky_(peeky) {
    const std::size_t v = kChars.size();
    enc_embed_ = register_module("enc_embed", std::make_shared<nn::Embedding>(v, embed));
    dec_embed_ = register_module("dec_embed", std::make_shared<nn::Embedding>(v, embed));
    nn::LSTMOptions e(embed, hidden), d(embed + (peeky ? hidden : 0), hidden);
    e.batch_first = d.batch_first = true;
    encoder_ = register_module("encoder", std::make_shared<nn::LSTM>(e));
    decoder_ = register_module("decoder", std::make_shared<nn::LSTM>(d));
    head_ = register_module("head", std::make_shared<nn::Linear>(hidden * (peeky ? 2 : 1), v, nn::Init::xavier()));
  }
  // The encoder's final state for questions (B, 7).
  nn::RecurrentState encode(const Variable& questions) { return (*encoder_)((*enc_embed_)(questions), {}).state; }
  // Logits (B, T, V) for decoder inputs (B, T), from state; enc_h is the
  // encoder's final h (1, B, H), which Peeky shows every step.
  Variable decode(const Variable& inputs, nn::RecurrentState& state, const Variable& enc_h) {
    const std::size_t b = inputs.shape()[0], t = inputs.shape()[1];
    Variable x = (*dec_embed_)(inputs), peek;
    if (peeky_) {
      peek = broadcast_to(reshape(enc_h, {b, 1, hidden_}), {b, t, hidden_});
      x = concat<float>({x, peek}, -1);
    }
    auto out = (*decoder_)(x, state);
    state = out.state;
    Variable h = peeky_ ? concat<float>({out.output, peek}, -1) : out.output;
    const std::size_t width = h.shape()[2];
    return reshape((*head_)(reshape(h, {b * t, width})), {b, t, kChars.size()});
  }
  Variable forward(const Variable&) override { throw ValueError("Seq2Seq: call encode and decode"); }
  std::string type_name() const override { return peeky_ ? "PeekySeq2Seq" : "Seq2Seq"; }

 private:
  std::size_t hidden_;
  bool peeky_;
  std::shared_ptr<nn::Embedding> enc_embed_, dec_embed_;
  std::shared_ptr<nn::LSTM> encoder_, decoder_;
  std::shared_ptr<nn::Linear> head_;
};

struct Variant {
  std::string name;
  bool reverse, peeky;
};

// The fraction of problems whose 4 answer characters greedy decoding gets
// all right, feeding each predicted character back in.
double accuracy(Seq2Seq& model, const Problems& p, std::size_t first, std::size_t count, bool reverse) {
  NoGradGuard no_grad;
  nn::EvalModeGuard eval;
  std::size_t right = 0;
  for (std::size_t at = first; at < first + count; at += 1000) {
    const std::size_t n = std::min<std::size_t>(1000, first + count - at);
    nn::RecurrentState state = model.encode(encode(p.questions, at, n, 0, kQuestion, reverse));
    const Variable enc_h = state.h;
    Tensor<float> next = Tensor<float>::from_shape({n, 1});
    next.fill(static_cast<float>(id('_')));
    std::vector<std::string> guess(n);
    for (std::size_t k = 1; k < kAnswer; ++k) {
      const Variable out = model.decode(Variable(next), state, enc_h);
      const Tensor<float>& logits = out.data();
      for (std::size_t i = 0; i < n; ++i) {
        std::size_t best = 0;
        for (std::size_t c = 1; c < kChars.size(); ++c)
          if (logits(i, 0, c) > logits(i, 0, best)) best = c;
        next(i, 0) = static_cast<float>(best);
        guess[i] += kChars[best];
      }
    }
    for (std::size_t i = 0; i < n; ++i) right += guess[i] == p.answers[at + i].substr(1);
  }
  return double(right) / double(count);
}

struct Config {
  std::size_t samples = 50000, batch = 128, embed = 16, hidden = 128;
  int epochs = 8, threads = 0;
  double lr = 0.001, clip = 5.0;
  std::uint64_t seed = 1;
  std::string out = "out/seq2seq_addition";
};

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"Seq2seq on addition (\"16+75\" -> \"91\"): a plain encoder-decoder LSTM, the same with the\n"
               "question reversed, with Peeky decoding, and with both, trained side by side.\n"
               "Prints test accuracy per epoch and draws accuracy.png."};
  app.add_option("--samples", c.samples, "Problems generated (90% train, 10% test)")
      ->check(CLI::Range(20, 10000000))->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--batch-size", c.batch, "Batch size")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--embed", c.embed, "Character embedding size")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--hidden", c.hidden, "LSTM hidden size")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--lr", c.lr, "Adam's learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--clip", c.clip, "Gradient norm clipping (0: none)")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the data and of each model's init and shuffling")->capture_default_str();
  app.add_option("--threads", c.threads, "Threads (0: one per core)")->check(CLI::Range(0, 256))->capture_default_str();
  app.add_option("--out", c.out, "Directory for accuracy.png and metrics.csv")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(c.threads);
    fs::create_directories(c.out);
    const Problems p = make_problems(c.samples, c.seed);
    const std::size_t n_train = c.samples * 9 / 10, n_test = c.samples - n_train;
    std::cout << n_train << " training and " << n_test << " test problems, e.g. '" << p.questions[0] << "' -> '"
              << p.answers[0] << "'\n";
    const std::vector<Variant> variants = {
        {"plain", false, false}, {"reversed", true, false}, {"peeky", false, true}, {"reversed + peeky", true, true}};
    std::vector<examples::Series> curves;
    std::vector<double> final_accuracy;
    std::vector<std::string> columns = {"epoch"};
    for (const auto& v : variants) columns.push_back(v.name);
    std::vector<std::vector<double>> table(std::size_t(c.epochs), std::vector<double>(1 + variants.size()));
    for (std::size_t m = 0; m < variants.size(); ++m) {
      const Variant& v = variants[m];
      // Each model starts from the same seed: the same init draws and the
      // same batch order, so only the variant differs.
      zg::manual_seed(c.seed);
      Seq2Seq model(c.embed, c.hidden, v.peeky);
      optim::Adam adam(model.parameters(), static_cast<float>(c.lr));
      if (c.clip > 0) adam.set_max_grad_norm(static_cast<float>(c.clip));
      std::vector<std::size_t> order(n_train);
      examples::Series s{v.name, {}, true};
      for (int epoch = 1; epoch <= c.epochs; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < n_train; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), zg::generator());
        Problems shuffled;
        for (std::size_t i : order) {
          shuffled.questions.push_back(p.questions[i]);
          shuffled.answers.push_back(p.answers[i]);
        }
        double total = 0;
        std::size_t steps = 0;
        model.train();
        for (std::size_t at = 0; at + c.batch <= n_train; at += c.batch, ++steps) {
          nn::RecurrentState state = model.encode(encode(shuffled.questions, at, c.batch, 0, kQuestion, v.reverse));
          const Variable enc_h = state.h;
          const Variable in = encode(shuffled.answers, at, c.batch, 0, kAnswer - 1, false),
                         target = encode(shuffled.answers, at, c.batch, 1, kAnswer - 1, false);
          const Variable logits = model.decode(in, state, enc_h);
          const std::size_t rows = c.batch * (kAnswer - 1);
          Variable loss = nn::functional::cross_entropy(reshape(logits, {rows, kChars.size()}), reshape(target, {rows}));
          loss.backward();
          adam.step();
          adam.zero_grad();
          total += loss.item();
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double acc = accuracy(model, p, n_train, n_test, v.reverse);
        std::cout << std::left << std::setw(17) << v.name << std::right << " epoch " << std::setw(3) << epoch
                  << ": loss " << std::fixed << std::setprecision(4) << total / double(std::max<std::size_t>(steps, 1))
                  << ", test accuracy " << std::setprecision(3) << acc << " (" << examples::format_seconds(seconds)
                  << ")\n";
        s.points.emplace_back(epoch, acc);
        table[std::size_t(epoch - 1)][0] = epoch;
        table[std::size_t(epoch - 1)][1 + m] = acc;
      }
      final_accuracy.push_back(s.points.back().second);
      curves.push_back(s);
    }
    examples::MetricsCsv csv((fs::path(c.out) / "metrics.csv").string(), columns);
    for (const auto& row : table) csv.add(row);
    std::cout << "\nfinal test accuracy after " << c.epochs << " epochs:";
    for (std::size_t m = 0; m < variants.size(); ++m)
      std::cout << (m ? ", " : " ") << variants[m].name << " " << std::fixed << std::setprecision(3)
                << final_accuracy[m];
    std::cout << "\n";
    const std::string png = (fs::path(c.out) / "accuracy.png").string();
    examples::PlotOptions o{"seq2seq on addition: test accuracy", "epoch", "accuracy (whole answer right)", false,
                            true};
    o.key = "top left";
    examples::report_plot(examples::plot_lines(png, curves, o), png);
  } catch (const std::exception& e) {
    std::cerr << "seq2seq_addition: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
