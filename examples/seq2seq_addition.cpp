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
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "cli.hpp"

#include "resume.hpp"

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

// Rows pick[first], ..., pick[first + count - 1], characters from .. from + length.
Variable encode(const std::vector<std::string>& rows, const std::vector<std::size_t>& pick, std::size_t first,
                std::size_t count, std::size_t from, std::size_t length, bool reverse) {
  Tensor<float> t = Tensor<float>::from_shape({count, length});
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t k = 0; k < length; ++k) {
      const std::string& s = rows[pick[first + i]];
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
  std::string name, key;  // key: the model's entries in a checkpoint ("reversed_peeky.encoder.weight_ih_l0")
  bool reverse, peeky;
};
const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {{"plain", "plain", false, false},
                                         {"reversed", "reversed", true, false},
                                         {"peeky", "peeky", false, true},
                                         {"reversed + peeky", "reversed_peeky", true, true}};
  return v;
}

// The four models under one Module, so that one checkpoint holds them all.
// Each starts from the same seed (the same draws for the layers they share)
// and shuffles with a generator of its own, seeded as it was after its
// init: the same four runs as if each were trained alone.
class Variants : public nn::Module {
 public:
  Variants(std::size_t embed, std::size_t hidden, std::uint64_t seed) {
    for (const Variant& v : variants()) {
      zg::manual_seed(seed);
      models.push_back(register_module(v.key, std::make_shared<Seq2Seq>(embed, hidden, v.peeky)));
      generators.push_back(zg::generator());
    }
  }
  Variable forward(const Variable&) override { throw ValueError("Variants: train each of models"); }
  std::string type_name() const override { return "Variants"; }

  std::vector<std::shared_ptr<Seq2Seq>> models;
  std::vector<Generator> generators;  // each model's shuffles
};

// The fraction of problems whose 4 answer characters greedy decoding gets
// all right, feeding each predicted character back in.
double accuracy(Seq2Seq& model, const Problems& p, const std::vector<std::size_t>& identity, std::size_t first,
                std::size_t count, bool reverse) {
  NoGradGuard no_grad;
  nn::EvalModeGuard eval;
  std::size_t right = 0;
  for (std::size_t at = first; at < first + count; at += 1000) {
    const std::size_t n = std::min<std::size_t>(1000, first + count - at);
    nn::RecurrentState state = model.encode(encode(p.questions, identity, at, n, 0, kQuestion, reverse));
    const Variable enc_h = state.h;
    Tensor<float> next = Tensor<float>::from_shape({n, 1});
    next.fill(static_cast<float>(id('_')));
    std::vector<std::string> guess(n);
    for (std::size_t k = 1; k < kAnswer; ++k) {
      const Variable out = model.decode(Variable(next), state, enc_h);
      const Tensor<std::size_t> best = argmax_indices(out, -1);  // (n, 1)
      for (std::size_t i = 0; i < n; ++i) {
        next(i, 0) = static_cast<float>(best(i, 0));
        guess[i] += kChars[best(i, 0)];
      }
    }
    for (std::size_t i = 0; i < n; ++i) right += guess[i] == p.answers[at + i].substr(1);
  }
  return double(right) / double(count);
}

using examples::install_stop_handlers;  // Ctrl-C and SIGTERM stop after the current step
using examples::stop_signal;

}  // namespace

int main(int argc, char** argv) {
  examples::LessonConfig c;
  c.epochs = 8;
  c.out = "out/seq2seq_addition";
  cli::App app{"Seq2seq on addition (\"16+75\" -> \"91\"): a plain encoder-decoder LSTM, the same with the\n"
               "question reversed, with Peeky decoding, and with both, trained side by side.\n"
               "Prints test accuracy per epoch; writes metrics.csv, accuracy.png and checkpoint.npz to --out."};
  examples::add_lesson_options(app, c, {"Problems generated (90% train, 10% test)", 10000000,
                                        "Seed of the data and of each model's init and shuffling (below 2^48)",
                                        "Directory for metrics.csv, accuracy.png and checkpoint.npz"});
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(c.threads);
    const auto fixed = examples::lesson_fixed_options(c, "seq2seq");  // sizes, data and batch size
    if (!c.resume.empty()) examples::read_fixed_options(c.resume, "seq2seq_addition", fixed, app);

    install_stop_handlers();
    fs::create_directories(c.out);
    const Problems p = make_problems(c.samples, c.seed);
    const std::size_t n_train = c.samples * 9 / 10, n_test = c.samples - n_train;
    if (n_train < c.batch)
      throw ValueError("--batch-size " + std::to_string(c.batch) + " is more than the " + std::to_string(n_train) +
                       " training problems: use more --samples or smaller batches");
    std::vector<std::size_t> identity(c.samples);
    for (std::size_t i = 0; i < c.samples; ++i) identity[i] = i;
    std::cout << n_train << " training and " << n_test << " test problems, e.g. '" << p.questions[0] << "' -> '"
              << p.answers[0] << "'\n";

    const std::vector<Variant>& vs = variants();
    const std::size_t n_models = vs.size();
    Variants all(c.embed, c.hidden, c.seed);
    std::vector<std::unique_ptr<optim::Adam>> adams;
    for (const auto& model : all.models) {
      adams.push_back(std::make_unique<optim::Adam>(model->parameters(), static_cast<float>(c.lr)));
      if (c.clip > 0) adams.back()->set_max_grad_norm(static_cast<float>(c.clip));
    }

    // The checkpoint holds the four models, each one's Adam state
    // ("plain.optimizer.*") and generator ("plain.generator"), sizes and
    // data, and where the run stood: whole epochs done by all four, how many
    // models went through the next one, and steps of the next model into it.
    // A model's generator is the one its unfinished epoch began with (the
    // shuffle is drawn again on resuming).
    int start_epoch = 0;
    std::size_t start_model = 0, start_step = 0;
    if (!c.resume.empty()) {
      auto ours = [&](const std::string& n) {
        if (n.rfind("train.", 0) == 0 || n.rfind("seq2seq.", 0) == 0) return true;
        for (const Variant& v : vs)
          if (n == v.key + ".generator" || n.rfind(v.key + ".optimizer.", 0) == 0) return true;
        return false;
      };
      nn::LoadOptions options;
      options.extra_names = ours;
      nn::load_checkpoint(c.resume, all, [&](const nn::NamedArrays& rest) {
        std::vector<nn::NamedArrays> opt(n_models);
        std::vector<bool> has_generator(n_models);
        for (const auto& [name, a] : rest) {
          if (name == "train.epoch") start_epoch = static_cast<int>(optim::decode_count(a, name));
          else if (name == "train.model") start_model = static_cast<std::size_t>(optim::decode_count(a, name));
          else if (name == "train.step") start_step = static_cast<std::size_t>(optim::decode_count(a, name));
          for (std::size_t m = 0; m < n_models; ++m) {
            const std::string prefix = vs[m].key + ".";
            if (name == prefix + "generator") {
              nn::decode_generator(a, all.generators[m], name);
              has_generator[m] = true;
            } else if (name.rfind(prefix + "optimizer.", 0) == 0) {
              opt[m].emplace_back(name.substr(prefix.size()), a);
            }
          }
        }
        for (std::size_t m = 0; m < n_models; ++m) {
          if (!has_generator[m]) throw ValueError(c.resume + " holds no '" + vs[m].key + ".generator'");
          adams[m]->load_state_dict(opt[m]);
        }
      }, options);
      if (start_model >= n_models)
        throw ValueError(c.resume + ": 'train.model' is " + std::to_string(start_model) + ", past the " +
                         std::to_string(n_models) + " models");
      if (app.count("--lr"))
        for (auto& adam : adams) adam->set_lr(static_cast<float>(c.lr));
      std::vector<std::string> done;  // of the unfinished epoch
      for (std::size_t m = 0; m < start_model; ++m) done.push_back(vs[m].name);
      if (start_step) done.push_back(std::to_string(start_step) + " steps of " + vs[start_model].name);
      std::cout << examples::resumed_message(c.resume, start_epoch, 0);
      const std::string in_epoch = " and, in epoch " + std::to_string(start_epoch + 1) + ", ";
      for (std::size_t i = 0; i < done.size(); ++i)
        std::cout << (i == 0 ? in_epoch : i + 1 < done.size() ? ", " : " and ") << done[i];
      std::cout << "\n";
    }
    const std::size_t per_epoch = n_train / c.batch;
    if (start_step >= per_epoch)
      throw ValueError(c.resume + ": step " + std::to_string(start_step) + " is past the " +
                       std::to_string(per_epoch) + " steps of an epoch");
    std::cout << n_models << " models of " << all.models[0]->parameter_count() << " (plain) to "
              << all.models[2]->parameter_count() << " (peeky) parameters; Adam, lr " << adams[0]->lr()
              << ", gradient norm clipped to " << c.clip << ", batch " << c.batch << ", " << per_epoch
              << " steps per epoch, threads " << zg::num_threads() << "\n";

    const fs::path out(c.out);
    const std::string ck = (out / "checkpoint.npz").string();
    std::vector<std::string> columns = {"epoch"};
    for (const auto& v : vs) columns.push_back(v.name);
    examples::MetricsCsv csv((out / "metrics.csv").string(), columns);
    if (!c.resume.empty()) csv.keep_rows_until(start_epoch);
    std::vector<examples::Series> curves;
    for (std::size_t m = 0; m < n_models; ++m) {
      curves.push_back({vs[m].name, {}, true});
      for (const auto& row : csv.rows()) curves[m].points.emplace_back(row[0], row[1 + m]);
    }
    auto save = [&](int epochs_done, std::size_t models_done, std::size_t steps_done,
                    const std::vector<Generator>& generators) {
      nn::NamedArrays extra = examples::fixed_option_entries(fixed);
      for (std::size_t m = 0; m < n_models; ++m) {
        for (auto& [name, a] : adams[m]->state_dict()) extra.emplace_back(vs[m].key + "." + name, std::move(a));
        extra.emplace_back(vs[m].key + ".generator", nn::encode_generator(generators[m]));
      }
      extra.emplace_back("train.epoch", optim::encode_count(epochs_done));
      extra.emplace_back("train.model", optim::encode_count(static_cast<std::int64_t>(models_done)));
      extra.emplace_back("train.step", optim::encode_count(static_cast<std::int64_t>(steps_done)));
      examples::save_finite_checkpoint(ck, all, extra);
    };

    // Epoch by epoch, each model in turn: a checkpoint after every epoch
    // holds the four at the same point.
    const int last_epoch = start_epoch + c.epochs;
    bool stopped = false;
    std::size_t steps_run = 0;
    std::vector<std::size_t> order(n_train);
    for (int epoch = start_epoch + 1; epoch <= last_epoch && !stopped; ++epoch) {
      std::vector<double> row = {double(epoch)};
      const bool continuing = epoch == start_epoch + 1;
      for (std::size_t m = 0; m < n_models && !stopped; ++m) {
        const Variant& v = vs[m];
        Seq2Seq& model = *all.models[m];
        if (continuing && m < start_model) {  // trained through this epoch before the stop
          row.push_back(accuracy(model, p, identity, n_train, n_test, v.reverse));
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        const Generator epoch_generator = all.generators[m];
        for (std::size_t i = 0; i < n_train; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), all.generators[m]);
        const std::size_t first = continuing && m == start_model ? start_step : 0;
        std::ostringstream label;
        label << v.name << " epoch " << epoch << "/" << last_epoch;
        model.train();
        const auto loss_of = [&](std::size_t step) {
          const std::size_t at = step * c.batch;
          nn::RecurrentState state = model.encode(encode(p.questions, order, at, c.batch, 0, kQuestion, v.reverse));
          const Variable enc_h = state.h;
          const Variable in = encode(p.answers, order, at, c.batch, 0, kAnswer - 1, false),
                         target = encode(p.answers, order, at, c.batch, 1, kAnswer - 1, false);
          const Variable logits = model.decode(in, state, enc_h);
          const std::size_t rows = c.batch * (kAnswer - 1);
          return nn::functional::cross_entropy(reshape(logits, {rows, kChars.size()}), reshape(target, {rows}));
        };
        const examples::EpochResult r = examples::run_steps(label.str(), first, per_epoch, loss_of, [&] {
          adams[m]->step();
          adams[m]->zero_grad();
          if (++steps_run == c.stop_after) std::raise(SIGINT);
        });
        if (r.stopped) {  // the models before this one went through the epoch; this one stands at `step`
          const std::size_t step = first + r.steps;
          std::cout << std::left << std::setw(17) << v.name << std::right << " epoch " << std::setw(3) << epoch
                    << ": stopped at step " << step << " of " << per_epoch << "\n";
          std::vector<Generator> generators = all.generators;
          generators[m] = epoch_generator;
          save(epoch - 1, m, step, generators);
          stopped = true;
          break;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double acc = accuracy(model, p, identity, n_train, n_test, v.reverse);
        std::cout << std::left << std::setw(17) << v.name << std::right << " epoch " << std::setw(3) << epoch
                  << ": loss " << std::fixed << std::setprecision(4) << r.mean_loss << ", test accuracy "
                  << std::setprecision(3) << acc << " (" << examples::format_seconds(seconds) << ")\n";
        row.push_back(acc);
      }
      if (stopped) break;
      csv.add(row);
      for (std::size_t m = 0; m < n_models; ++m) curves[m].points.emplace_back(epoch, row[1 + m]);
      save(epoch, 0, 0, all.generators);
    }
    std::cout << "metrics: " << csv.path() << "\n";
    if (!csv.rows().empty()) {
      const auto& last = csv.rows().back();
      std::cout << "\nfinal test accuracy after " << int(last[0]) << (last[0] == 1 ? " epoch:" : " epochs:");
      for (std::size_t m = 0; m < n_models; ++m)
        std::cout << (m ? ", " : " ") << vs[m].name << " " << std::fixed << std::setprecision(3) << last[1 + m];
      std::cout << "\n";
      const std::string png = (out / "accuracy.png").string();
      examples::PlotOptions o{"seq2seq on addition: test accuracy", "epoch", "accuracy (whole answer right)", false,
                              true};
      o.key = "top left";
      examples::report_plot(examples::plot_lines(png, curves, o), png);
    }
    std::cout << "checkpoint: " << ck << "\n";
    if (stopped) {
      const int sig = stop_signal.load();
      std::cerr << "seq2seq_addition: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                << "; continue with --resume " << ck << "\n";
      return 128 + sig;
    }
  } catch (const examples::NonFiniteLoss& e) {
    std::cerr << "seq2seq_addition: " << e.what() << ".\nThe checkpoint in " << c.out
              << " keeps the last good epoch. Try a smaller --lr or --clip.\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "seq2seq_addition: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
