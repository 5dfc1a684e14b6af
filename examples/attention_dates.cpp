// The sequel's attention lesson: dates written in many ways ("september 27,
// 1994", "TUE, SEP 27, 1994", "9/27/94", "27.09.1994", ...) translated
// character by character into ISO form ("1994-09-27"). An encoder LSTM
// reads the question and keeps its hidden state at every step; at each
// output step the decoder's state scores every encoder state by a dot
// product, a softmax turns the scores into weights, and their weighted sum
// (the context) joins the decoder state before the output layer. The
// weights show which input characters each output character was read from:
// they are drawn as heat maps after training.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <unordered_set>

#include "cli.hpp"

#include "resume.hpp"

namespace fs = std::filesystem;
using namespace zg;

namespace {

// Every character the written forms and the answers use; ' ' pads the
// questions and '_' starts an answer.
const std::string kChars = " _-,./0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::size_t kAnswer = 11;  // "_1994-09-27"
constexpr int kFirstYear = 1970, kLastYear = 2030;

std::size_t id(char ch) { return kChars.find(ch); }

struct Date {
  int year, month, day;
};

// Days since 1970-01-01 and back (the proleptic Gregorian calendar).
long days_from_civil(Date d) {
  const int y = d.year - (d.month <= 2);
  const long era = (y >= 0 ? y : y - 399) / 400;
  const long yoe = y - era * 400;
  const long doy = (153 * (d.month + (d.month > 2 ? -3 : 9)) + 2) / 5 + d.day - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}
Date civil_from_days(long z) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const long doe = z - era * 146097;
  const long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long mp = (5 * doy + 2) / 153;
  const int month = int(mp < 10 ? mp + 3 : mp - 9);
  return {int(yoe + era * 400 + (month <= 2)), month, int(doy - (153 * mp + 2) / 5 + 1)};
}

const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                               "July",    "August",   "September", "October", "November", "December"};
const char* const kWeekdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

// How dates are written: {d} day, {dd} day in two digits, {o} the ordinal
// suffix of the day (st, nd, rd, th), {M} / {MM} month number, {MMM} /
// {MMMM} its name short and long, {yy} / {yyyy} year, {EEE} / {EEEE}
// weekday. Each written form with letters comes as is, in lower case and
// in upper case. Two-digit years are unambiguous between 1970 and 2030, and
// the separators keep day and month apart (M/d, d.M, y-M-d).
const std::vector<std::string>& formats() {
  static const std::vector<std::string> f = {
      "{MMMM} {d}, {yyyy}", "{MMM} {d}, {yyyy}", "{MMM}. {d}, {yyyy}", "{MMMM} {dd}, {yyyy}", "{MMMM} {d} {yyyy}",
      "{MMM} {d} {yyyy}", "{MMM} {dd} {yy}", "{MMMM} {d}{o}, {yyyy}", "{d} {MMMM} {yyyy}", "{d} {MMM} {yyyy}",
      "{dd} {MMM} {yyyy}", "{dd} {MMMM} {yyyy}", "{d} {MMM}, {yyyy}", "{d} {MMMM}, {yyyy}", "{dd}, {MMM} {yyyy}",
      "{dd} {MMMM} {yy}", "{d}{o} {MMMM} {yyyy}", "the {d}{o} of {MMMM}, {yyyy}", "{d}-{MMM}-{yyyy}",
      "{dd}-{MMM}-{yy}", "{yyyy} {MMMM} {d}", "{EEEE}, {MMMM} {d}, {yyyy}", "{EEE}, {MMM} {d}, {yyyy}",
      "{EEEE} {d} {MMMM} {yyyy}", "{EEE} {d} {MMM} {yyyy}", "{EEEE}, {d} {MMMM} {yyyy}", "{EEE}, {dd} {MMM} {yyyy}",
      "{EEEE}, {MMMM} {d}{o}, {yyyy}", "{M}/{d}/{yy}", "{MM}/{dd}/{yy}", "{M}/{d}/{yyyy}", "{MM}/{dd}/{yyyy}",
      "{d}.{M}.{yyyy}", "{dd}.{MM}.{yyyy}", "{dd}.{MM}.{yy}", "{yyyy}.{MM}.{dd}", "{yyyy}/{MM}/{dd}",
      "{yyyy}{MM}{dd}", "{yyyy}-{M}-{d}", "{d} {MM} {yy}",
  };
  return f;
}

std::string two_digits(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

std::string write_date(const std::string& format, Date d) {
  const int weekday = int(((days_from_civil(d) + 4) % 7 + 7) % 7);  // 1970-01-01 was a Thursday
  const std::string month = kMonths[d.month - 1], day_name = kWeekdays[weekday];
  const int last = d.day % 10;
  const std::string ordinal =
      d.day / 10 == 1 || last == 0 || last > 3 ? "th" : last == 1 ? "st" : last == 2 ? "nd" : "rd";
  const std::map<std::string, std::string> fields = {
      {"d", std::to_string(d.day)},       {"dd", two_digits(d.day)},      {"o", ordinal},
      {"M", std::to_string(d.month)},     {"MM", two_digits(d.month)},    {"MMM", month.substr(0, 3)},
      {"MMMM", month},                    {"yy", two_digits(d.year % 100)}, {"yyyy", std::to_string(d.year)},
      {"EEE", day_name.substr(0, 3)},     {"EEEE", day_name}};
  std::string out;
  for (std::size_t i = 0; i < format.size();) {
    if (format[i] != '{') {
      out += format[i++];
      continue;
    }
    const std::size_t end = format.find('}', i);
    out += fields.at(format.substr(i + 1, end - i - 1));
    i = end + 1;
  }
  return out;
}

std::string iso(Date d) { return std::to_string(d.year) + "-" + two_digits(d.month) + "-" + two_digits(d.day); }

struct Dates {
  std::vector<std::string> questions, answers;  // padded to `width`; "_" + ISO
  std::size_t width = 0;
};

// n distinct written dates (no question twice, so the held-out ones are
// never trained on): a uniform day of 1970-2030, a uniform format, and for
// a format with letters as is, lower or upper case with equal chance. From
// a generator of its own, so the data depend on the seed alone.
Dates make_dates(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<long> day(days_from_civil({kFirstYear, 1, 1}), days_from_civil({kLastYear, 12, 31}));
  std::uniform_int_distribution<std::size_t> format(0, formats().size() - 1);
  std::uniform_int_distribution<int> letter_case(0, 2);
  Dates out;
  std::unordered_set<std::string> seen;
  while (out.questions.size() < n) {
    const Date d = civil_from_days(day(gen));
    std::string q = write_date(formats()[format(gen)], d);
    const int c = letter_case(gen);
    for (char& ch : q) ch = c == 1 ? char(std::tolower(ch)) : c == 2 ? char(std::toupper(ch)) : ch;
    if (!seen.insert(q).second) continue;
    out.width = std::max(out.width, q.size());
    out.questions.push_back(q);
    out.answers.push_back("_" + iso(d));
  }
  for (auto& q : out.questions) q.resize(out.width, ' ');
  return out;
}

Variable encode(const std::vector<std::string>& rows, const std::vector<std::size_t>& pick, std::size_t first,
                std::size_t count, std::size_t from, std::size_t length) {
  Tensor<float> t = Tensor<float>::from_shape({count, length});
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t k = 0; k < length; ++k) t(i, k) = static_cast<float>(id(rows[pick[first + i]][from + k]));
  return Variable(t);
}

// The sequel's AttentionSeq2seq with PyTorch-shaped layers.
class AttentionSeq2seq : public nn::Module {
 public:
  AttentionSeq2seq(std::size_t embed, std::size_t hidden) {
    const std::size_t v = kChars.size();
    enc_embed_ = register_module("enc_embed", std::make_shared<nn::Embedding>(v, embed));
    dec_embed_ = register_module("dec_embed", std::make_shared<nn::Embedding>(v, embed));
    nn::LSTMOptions o(embed, hidden);
    o.batch_first = true;
    encoder_ = register_module("encoder", std::make_shared<nn::LSTM>(o));
    decoder_ = register_module("decoder", std::make_shared<nn::LSTM>(o));
    head_ = register_module("head", std::make_shared<nn::Linear>(2 * hidden, v, nn::Init::xavier()));
  }
  // Every encoder state hs (B, S, H) for questions (B, S), and the final one.
  nn::RecurrentOutput encode(const Variable& questions) { return (*encoder_)((*enc_embed_)(questions), {}); }
  struct Decoded {
    Variable logits, weights;  // (B, T, V) and (B, T, S)
  };
  // Decoder inputs (B, T) from state, attending over hs.
  Decoded decode(const Variable& inputs, nn::RecurrentState& state, const Variable& hs) {
    auto out = (*decoder_)((*dec_embed_)(inputs), state);
    state = out.state;
    const Variable& h = out.output;                                        // (B, T, H)
    const Variable weights = softmax(matmul(h, transpose(hs, 1, 2)), -1);  // (B, T, S)
    const Variable context = matmul(weights, hs);                          // (B, T, H)
    return {(*head_)(concat<float>({context, h}, -1)), weights};
  }
  Variable forward(const Variable&) override { throw ValueError("AttentionSeq2seq: call encode and decode"); }
  std::string type_name() const override { return "AttentionSeq2seq"; }

 private:
  std::shared_ptr<nn::Embedding> enc_embed_, dec_embed_;
  std::shared_ptr<nn::LSTM> encoder_, decoder_;
  std::shared_ptr<nn::Linear> head_;
};

// Greedy decoding of questions[pick[first ...]]: each predicted character
// is fed back in. The answers (10 characters) and the attention weights of
// each, [example][output step][input position].
struct Guesses {
  std::vector<std::string> answers;
  std::vector<std::vector<std::vector<double>>> weights;
};
Guesses decode_greedy(AttentionSeq2seq& model, const Dates& data, const std::vector<std::size_t>& pick,
                      std::size_t first, std::size_t count, bool keep_weights) {
  NoGradGuard no_grad;
  nn::EvalModeGuard eval;
  Guesses g;
  for (std::size_t at = first; at < first + count; at += 1000) {
    const std::size_t n = std::min<std::size_t>(1000, first + count - at);
    auto enc = model.encode(encode(data.questions, pick, at, n, 0, data.width));
    nn::RecurrentState state = enc.state;
    Tensor<float> next = Tensor<float>::from_shape({n, 1});
    next.fill(static_cast<float>(id('_')));
    std::vector<std::string> guess(n);
    std::vector<std::vector<std::vector<double>>> weights(keep_weights ? n : 0);
    for (std::size_t k = 1; k < kAnswer; ++k) {
      const auto out = model.decode(Variable(next), state, enc.output);
      const Tensor<std::size_t> best = argmax_indices(out.logits, -1);  // (n, 1)
      for (std::size_t i = 0; i < n; ++i) {
        next(i, 0) = static_cast<float>(best(i, 0));
        guess[i] += kChars[best(i, 0)];
        if (keep_weights) {
          std::vector<double> row(data.width);
          for (std::size_t s = 0; s < data.width; ++s) row[s] = out.weights.data()(i, 0, s);
          weights[i].push_back(row);
        }
      }
    }
    g.answers.insert(g.answers.end(), guess.begin(), guess.end());
    g.weights.insert(g.weights.end(), weights.begin(), weights.end());
  }
  return g;
}

using examples::install_stop_handlers;  // Ctrl-C and SIGTERM stop after the current step
using examples::stop_signal;

}  // namespace

int main(int argc, char** argv) {
  examples::LessonConfig c;
  c.out = "out/attention_dates";
  cli::App app{"Attention on dates: dates written in ~40 ways (\"september 27, 1994\", \"TUE, SEP 27, 1994\",\n"
               "\"9/27/94\", \"27.09.1994\", ...) translated into ISO form (\"1994-09-27\") by an encoder-decoder\n"
               "LSTM with dot-product attention, as in the sequel. Prints held-out accuracy per epoch; writes\n"
               "metrics.csv, accuracy.png, the attention weights of a few held-out dates as attention.png,\n"
               "and checkpoint.npz to --out."};
  examples::add_lesson_options(app, c, {"Distinct written dates generated (90% train, 10% held out)", 1000000,
                                        "Seed of the data and of the model's init and shuffling (below 2^48)",
                                        "Directory for metrics.csv, accuracy.png, attention.png and checkpoint.npz"});
  std::size_t print_data = 0;
  app.add_option("--print-data", print_data, "Print the first N generated dates (question, tab, answer) and exit");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(c.threads);
    if (print_data > 0) {
      const Dates d = make_dates(std::min(print_data, c.samples), c.seed);
      for (std::size_t i = 0; i < d.questions.size(); ++i) {
        std::string q = d.questions[i];
        q.erase(q.find_last_not_of(' ') + 1);
        std::cout << q << "\t" << d.answers[i].substr(1) << "\n";
      }
      return 0;
    }

    const auto fixed = examples::lesson_fixed_options(c, "dates");  // sizes, data and batch size
    if (!c.resume.empty()) examples::read_fixed_options(c.resume, "attention_dates", fixed, app);

    install_stop_handlers();
    fs::create_directories(c.out);
    const Dates data = make_dates(c.samples, c.seed);
    const std::size_t n_train = c.samples * 9 / 10, n_test = c.samples - n_train;
    if (n_train < c.batch)
      throw ValueError("--batch-size " + std::to_string(c.batch) + " is more than the " + std::to_string(n_train) +
                       " training dates: use more --samples or smaller batches");
    std::vector<std::size_t> identity(c.samples);
    for (std::size_t i = 0; i < c.samples; ++i) identity[i] = i;
    std::cout << n_train << " training and " << n_test << " held-out dates in " << formats().size()
              << " formats, questions padded to " << data.width << " characters, e.g.\n";
    for (std::size_t i = 0; i < 3; ++i)
      std::cout << "  '" << data.questions[i] << "' -> '" << data.answers[i].substr(1) << "'\n";

    zg::manual_seed(c.seed);
    AttentionSeq2seq model(c.embed, c.hidden);
    optim::Adam adam(model.parameters(), static_cast<float>(c.lr));
    if (c.clip > 0) adam.set_max_grad_norm(static_cast<float>(c.clip));

    // The checkpoint holds the model, Adam's state, sizes and data, the
    // epochs and steps done, and the generator as it was when the unfinished
    // epoch began (its shuffle is drawn again on resuming).
    int start_epoch = 0;
    std::size_t start_step = 0;
    if (!c.resume.empty()) {
      nn::LoadOptions options;
      options.extra_names = [](const std::string& n) {
        return n.rfind("optimizer.", 0) == 0 || n.rfind("train.", 0) == 0 || n.rfind("dates.", 0) == 0;
      };
      std::optional<Tensor<float>> generator;
      nn::load_checkpoint(c.resume, model, [&](const nn::NamedArrays& rest) {
        nn::NamedArrays opt;
        for (const auto& [name, a] : rest) {
          if (name == "train.epoch") start_epoch = static_cast<int>(optim::decode_count(a, name));
          else if (name == "train.step") start_step = static_cast<std::size_t>(optim::decode_count(a, name));
          else if (name == "train.generator") generator = a;
          else if (name.rfind("optimizer.", 0) == 0) opt.emplace_back(name, a);
        }
        adam.load_state_dict(opt);
      }, options);
      if (!generator) throw ValueError(c.resume + " holds no 'train.generator'");
      nn::decode_generator(*generator, zg::generator(), "train.generator");
      if (app.count("--lr")) adam.set_lr(static_cast<float>(c.lr));
      std::cout << examples::resumed_message(c.resume, start_epoch, start_step) << "\n";
    }

    const std::size_t per_epoch = n_train / c.batch;
    if (start_step >= per_epoch)
      throw ValueError(c.resume + ": step " + std::to_string(start_step) + " is past the " +
                       std::to_string(per_epoch) + " steps of an epoch");
    std::cout << model.summary() << "optimizer: Adam, lr " << adam.lr() << ", gradient norm clipped to " << c.clip
              << ", batch " << c.batch << ", " << per_epoch << " steps per epoch, threads " << zg::num_threads()
              << "\n";

    const fs::path out(c.out);
    const std::string ck = (out / "checkpoint.npz").string();
    examples::MetricsCsv csv((out / "metrics.csv").string(), {"epoch", "train_loss", "accuracy", "seconds"});
    const double start = start_epoch + double(start_step) / double(per_epoch);
    if (!c.resume.empty()) csv.keep_rows_until(start);
    examples::Series curve{"held-out accuracy", {}, true};
    for (const auto& row : csv.rows()) curve.points.emplace_back(row[0], row[2]);
    auto save = [&](int epochs_done, std::size_t steps_done, const Tensor<float>& generator) {
      nn::NamedArrays extra = adam.state_dict();
      for (auto& e : examples::fixed_option_entries(fixed)) extra.push_back(std::move(e));
      extra.emplace_back("train.epoch", optim::encode_count(epochs_done));
      extra.emplace_back("train.step", optim::encode_count(static_cast<std::int64_t>(steps_done)));
      extra.emplace_back("train.generator", generator);
      examples::save_finite_checkpoint(ck, model, extra);
    };

    const int last_epoch = start_epoch + c.epochs;
    double reached = start;
    bool stopped = false;
    std::size_t steps_run = 0;
    std::vector<std::size_t> order(n_train);
    for (int epoch = start_epoch + 1; epoch <= last_epoch && !stopped; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      const bool continuing = epoch == start_epoch + 1 && start_step > 0;
      const Tensor<float> epoch_generator = nn::encode_generator(zg::generator());
      for (std::size_t i = 0; i < n_train; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), zg::generator());
      std::ostringstream label;
      label << "epoch " << epoch << "/" << last_epoch;
      model.train();
      const auto loss_of = [&](std::size_t step) {
        const std::size_t at = step * c.batch;
        auto enc = model.encode(encode(data.questions, order, at, c.batch, 0, data.width));
        nn::RecurrentState state = enc.state;
        const Variable in = encode(data.answers, order, at, c.batch, 0, kAnswer - 1),
                       target = encode(data.answers, order, at, c.batch, 1, kAnswer - 1);
        const Variable logits = model.decode(in, state, enc.output).logits;
        const std::size_t rows = c.batch * (kAnswer - 1);
        return nn::functional::cross_entropy(reshape(logits, {rows, kChars.size()}), reshape(target, {rows}));
      };
      const std::size_t first = continuing ? start_step : 0;
      const examples::EpochResult r = examples::run_steps(label.str(), first, per_epoch, loss_of, [&] {
        adam.step();
        adam.zero_grad();
        if (++steps_run == c.stop_after) std::raise(SIGINT);
      });
      const std::size_t step = first + r.steps;
      const double mean = r.mean_loss;
      stopped = r.stopped;
      if (stopped && r.steps == 0) break;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      reached = stopped ? epoch - 1 + double(step) / double(per_epoch) : epoch;
      const Guesses g = decode_greedy(model, data, identity, n_train, n_test, false);
      std::size_t right = 0;
      for (std::size_t i = 0; i < n_test; ++i) right += g.answers[i] == data.answers[n_train + i].substr(1);
      const double acc = double(right) / double(n_test);
      std::cout << (stopped ? label.str() + " (stopped at step " + std::to_string(step) + ")"
                            : "epoch " + std::to_string(epoch))
                << ": train loss " << std::fixed << std::setprecision(4) << mean << ", held-out accuracy "
                << std::setprecision(4) << acc << " (" << examples::format_seconds(seconds) << ")\n";
      for (std::size_t i = 0; i < std::min<std::size_t>(3, n_test); ++i) {
        std::string q = data.questions[n_train + i];
        q.erase(q.find_last_not_of(' ') + 1);
        const bool ok = g.answers[i] == data.answers[n_train + i].substr(1);
        std::cout << "  " << std::left << std::setw(int(data.width) + 2) << "'" + q + "'" << std::right << " -> "
                  << g.answers[i] << (ok ? "" : "  (wrong: " + data.answers[n_train + i].substr(1) + ")") << "\n";
      }
      csv.add({reached, mean, acc, seconds});
      curve.points.emplace_back(reached, acc);
      if (stopped) save(epoch - 1, step, epoch_generator);
      else save(epoch, 0, nn::encode_generator(zg::generator()));
    }
    std::cout << "metrics: " << csv.path() << "\n";
    const std::string png = (out / "accuracy.png").string();
    examples::PlotOptions o{"attention on dates: held-out accuracy", "epoch", "accuracy (whole date right)", false,
                            true};
    o.key = "bottom right";
    examples::report_plot(examples::plot_lines(png, {curve}, o), png);

    // The weights of four held-out dates of different formats.
    const std::size_t shown = std::min<std::size_t>(4, n_test);
    const Guesses g = decode_greedy(model, data, identity, n_train, shown, true);
    std::vector<examples::Heatmap> maps;
    for (std::size_t i = 0; i < shown; ++i) {
      examples::Heatmap m;
      const std::string& q = data.questions[n_train + i];
      m.title = q.substr(0, q.find_last_not_of(' ') + 1) + "  ->  " + g.answers[i];
      for (char ch : q) m.x_labels.push_back(ch == ' ' ? "" : std::string(1, ch));
      for (char ch : g.answers[i]) m.y_labels.push_back(std::string(1, ch));
      m.values = g.weights[i];
      maps.push_back(m);
    }
    const std::string heat = (out / "attention.png").string();
    examples::report_plot(examples::plot_heatmaps(heat, maps, {"attention weights (white: 1, black: 0)",
                                                               "input (padded with spaces)", "output", 2}),
                          heat);
    std::cout << "checkpoint: " << ck << "\n";
    if (stopped) {
      const int sig = stop_signal.load();
      std::cerr << "attention_dates: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << " at epoch "
                << std::fixed << std::setprecision(2) << reached << "; continue with --resume " << ck << "\n";
      return 128 + sig;
    }
  } catch (const examples::NonFiniteLoss& e) {
    std::cerr << "attention_dates: " << e.what() << ".\nThe checkpoint in " << c.out
              << " keeps the last good epoch. Try a smaller --lr or --clip.\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "attention_dates: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
