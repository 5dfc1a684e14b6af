// Trains a character-level language model (LSTM, GRU or GPT) on the fortunes
// text with truncated backpropagation through time, and samples from it:
// a progress bar per epoch, train and validation loss in nats per character
// against the unigram baseline, a sample after each epoch, metrics.csv, a
// loss PNG and checkpoints that resume exactly.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "cli.hpp"

#include "language_model.hpp"
#include "training.hpp"
#ifdef ZEROGRAD_WITH_ONNX
#include "zerograd/onnx.hpp"
#endif

namespace fs = std::filesystem;
using namespace zg;

namespace {

// Code points of s, or nothing when s is not valid UTF-8 (overlong forms,
// surrogates and values past U+10FFFF are invalid too).
std::optional<std::vector<char32_t>> decode_utf8(const std::string& s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return std::nullopt;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1f) : len == 3 ? (b & 0x0f) : (b & 0x07);
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2) return std::nullopt;
      cp = (cp << 6) | (c & 0x3f);
    }
    static const char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xf0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// The text of every regular file in dir, in name order. A file is text when
// it is valid UTF-8 without NUL bytes: fortune's .dat indexes are not. The
// .u8 names are links to the files themselves, so each file is read once,
// by its canonical path.
struct Corpus {
  std::vector<char32_t> text;
  std::vector<std::string> files, skipped;
};

Corpus read_corpus(const std::string& dir) {
  if (!fs::is_directory(dir)) throw ValueError("--data: '" + dir + "' is not a directory");
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  Corpus c;
  std::set<fs::path> seen;
  for (const auto& p : paths) {
    if (!seen.insert(fs::canonical(p)).second) continue;
    std::ifstream in(p, std::ios::binary);
    const std::string bytes(std::istreambuf_iterator<char>(in), {});
    auto cps = bytes.find('\0') == std::string::npos ? decode_utf8(bytes) : std::nullopt;
    if (!cps || cps->empty()) {
      c.skipped.push_back(p.filename().string());
      continue;
    }
    c.files.push_back(p.filename().string());
    c.text.insert(c.text.end(), cps->begin(), cps->end());
  }
  if (c.text.empty())
    throw ValueError("--data: '" + dir + "' holds no text files (UTF-8, no NUL bytes)" +
                     (c.skipped.empty() ? std::string() : "; skipped " + std::to_string(c.skipped.size()) +
                                                              " that are not text"));
  return c;
}

// The characters of text, sorted by code point: the same text always gives
// the same indices.
std::vector<char32_t> vocabulary(const std::vector<char32_t>& text) {
  std::set<char32_t> s(text.begin(), text.end());
  return {s.begin(), s.end()};
}

// The entropy of the character frequencies of tokens, in nats: the loss of
// the best model that ignores context.
double unigram_entropy(const std::vector<std::size_t>& tokens, std::size_t vocab) {
  std::vector<double> count(vocab, 0);
  for (std::size_t t : tokens) count[t] += 1;
  double h = 0;
  for (double n : count)
    if (n > 0) {
      const double p = n / double(tokens.size());
      h -= p * std::log(p);
    }
  return h;
}

std::string show(const std::vector<char32_t>& vocab, const std::vector<std::size_t>& tokens) {
  std::string s;
  for (std::size_t t : tokens) s += encode_utf8(vocab[t]);
  return s;
}

// Shows a character in an error message: control characters by code.
std::string describe(char32_t cp) {
  std::ostringstream s;
  if (cp < 0x20 || cp == 0x7f) s << "U+" << std::hex << std::uppercase << std::setw(4) << std::setfill('0') << unsigned(cp);
  else s << "'" << encode_utf8(cp) << "' (U+" << std::hex << std::uppercase << std::setw(4) << std::setfill('0')
         << unsigned(cp) << ")";
  return s.str();
}

Variable tokens_variable(const std::vector<std::size_t>& tokens) {
  Tensor<float> t = Tensor<float>::from_shape({1, tokens.size()});
  for (std::size_t i = 0; i < tokens.size(); ++i) t(0, i) = static_cast<float>(tokens[i]);
  return Variable(t);
}

// --export-onnx: the model as ONNX on token ids (batch, steps) -> logits
// (batch, steps, vocab), for any batch size and length (a transformer's up
// to its context length): a recurrent layer is ONNX's LSTM or GRU
// (docs/onnx.md).
void export_onnx(examples::LanguageModel& model, const std::vector<std::size_t>& text, std::size_t bptt,
                 const std::string& path) {
#ifdef ZEROGRAD_WITH_ONNX
  const std::size_t steps = std::min(model.context_length() ? model.context_length() : bptt, text.size());
  onnx::ExportOptions options;
  options.sequence_axis = 1;
  const Variable example = tokens_variable(std::vector<std::size_t>(text.begin(), text.begin() + std::ptrdiff_t(steps)));
  onnx::export_model(model, example, path, options);
  std::cout << "onnx: " << path << " (opset " << onnx::kOpset << ", token ids \"input\" (batch, "
            << (model.context_length() ? "sequence <= " + std::to_string(steps) : std::string("sequence"))
            << ") -> logits \"output\")\n";
#else
  (void)model, (void)text, (void)bptt, (void)path;
  throw ValueError("--export-onnx: this train-lm was built without ONNX (install libonnx-dev and rebuild)");
#endif
}

// n characters after the prompt, each drawn from softmax(logits / temperature)
// with zg::generator(). The prompt runs through the model first (a newline
// stands in for an empty prompt, so the text starts as a fortune does).
std::vector<std::size_t> generate(examples::LanguageModel& model, std::vector<std::size_t> context, std::size_t n,
                                  double temperature) {
  NoGradGuard no_grad;
  nn::EvalModeGuard eval;
  nn::RecurrentState state;
  std::vector<std::size_t> out;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const std::size_t window = model.context_length();
  std::vector<std::size_t> history = context;
  if (window > 0 && context.size() > window) context.erase(context.begin(), context.end() - std::ptrdiff_t(window));
  while (out.size() < n) {
    auto step = model(tokens_variable(context), state);
    state = step.state;
    const Tensor<float>& logits = step.logits.data();
    const std::size_t v = logits.shape()[2], last = context.size() - 1;
    std::vector<double> p(v);
    double top = -INFINITY, total = 0;
    for (std::size_t k = 0; k < v; ++k) top = std::max(top, double(logits(0, last, k)) / temperature);
    for (std::size_t k = 0; k < v; ++k) total += p[k] = std::exp(double(logits(0, last, k)) / temperature - top);
    double u = uniform(zg::generator()) * total;
    std::size_t pick = v - 1;
    for (std::size_t k = 0; k < v; ++k)
      if ((u -= p[k]) < 0) {
        pick = k;
        break;
      }
    out.push_back(pick);
    // A recurrent model goes on from its state with the new token alone; a
    // transformer reads the last `window` tokens again.
    history.push_back(pick);
    if (window == 0) context = {pick};
    else context.assign(history.end() - std::ptrdiff_t(std::min(window, history.size())), history.end());
  }
  return out;
}

// The mean loss in nats per character of model over tokens, in windows of
// bptt carrying the state, in eval mode without a graph.
double evaluate(examples::LanguageModel& model, const std::vector<std::size_t>& tokens, std::size_t batch,
                std::size_t bptt) {
  NoGradGuard no_grad;
  nn::EvalModeGuard eval;
  // A short validation text gets fewer rows, so each still holds a window.
  batch = std::max<std::size_t>(1, std::min(batch, tokens.size() / (bptt + 1)));
  nn::data::SequenceBatches batches(tokens, batch, bptt);
  nn::data::SequenceBatches::Batch b;
  nn::RecurrentState state;
  double total = 0, count = 0;
  while (batches.next(b)) {
    auto out = model(b.x, state);
    state = out.state;
    const std::size_t n = b.x.size(), v = out.logits.shape()[2];
    const double l = nn::functional::cross_entropy(reshape(out.logits, {n, v}), reshape(b.y, {n})).item();
    total += l * double(n);
    count += double(n);
  }
  return total / count;
}

using examples::install_stop_handlers;  // Ctrl-C and SIGTERM stop after the current step
using examples::stop_signal;

struct Config {
  examples::LanguageModelConfig model;
  std::string data = "/usr/share/games/fortunes";
  std::size_t batch = 32, bptt = 64, limit_chars = 0, sample = 0, sample_every_epoch = 200;
  int epochs = 1, threads = 0;
  double lr = 0.002, clip = 1.0, temperature = 0.8;
  std::uint64_t seed = 1;
  std::string out = "out/train-lm", resume, load, prompt, export_onnx;
  std::size_t stop_after = 0;
};

// Checkpoint entries besides the model's and the optimizer's: what model
// was built on which characters, and where the run stood.
const char* const kKinds = "lm.kind";  // index into language_model_kinds()

Tensor<float> floats(const std::vector<double>& v) {
  Tensor<float> t = Tensor<float>::from_shape({v.size()});
  for (std::size_t i = 0; i < v.size(); ++i) t(i) = static_cast<float>(v[i]);
  return t;
}

std::size_t whole(float v, const std::string& name) {
  if (!(v >= 0 && v < 16777216.f) || v != std::floor(v))
    throw ValueError(name + ": " + std::to_string(v) + " is not a count");
  return static_cast<std::size_t>(v);
}

// What a checkpoint says about the model, read before the model exists.
struct Saved {
  examples::LanguageModelConfig model;
  std::vector<char32_t> vocab;
};

Saved read_saved(const std::string& path) {
  nn::NpzReader zip(path);
  std::map<std::string, Tensor<float>> e;
  for (const auto& m : zip.members())
    if (m.name.rfind("lm.", 0) == 0) e[m.name] = zip.read_float(m, zip.header(m));
  for (const char* name : {kKinds, "lm.sizes", "lm.vocab"})
    if (!e.count(name)) throw ValueError(path + " is not a train-lm checkpoint: it has no '" + name + "'");
  Saved s;
  const auto& kinds = examples::language_model_kinds();
  const std::size_t kind = whole(e[kKinds].size() == 1 ? e[kKinds](0) : -1.f, kKinds);
  if (kind >= kinds.size()) throw ValueError(std::string(kKinds) + ": unknown model " + std::to_string(kind));
  s.model.kind = kinds[kind];
  const Tensor<float>& sizes = e["lm.sizes"];
  if (sizes.size() != 5) throw ValueError("lm.sizes: expected 5 values (embed, hidden, layers, heads, block)");
  s.model.embed = whole(sizes(0), "lm.sizes");
  s.model.hidden = whole(sizes(1), "lm.sizes");
  s.model.layers = whole(sizes(2), "lm.sizes");
  s.model.heads = whole(sizes(3), "lm.sizes");
  s.model.block = whole(sizes(4), "lm.sizes");
  for (float v : e["lm.vocab"]) s.vocab.push_back(static_cast<char32_t>(whole(v, "lm.vocab")));
  s.model.vocab = s.vocab.size();
  return s;
}

std::vector<std::size_t> encode_prompt(const std::string& prompt, const std::vector<char32_t>& vocab) {
  auto cps = decode_utf8(prompt);
  if (!cps) throw ValueError("--prompt is not valid UTF-8");
  std::vector<std::size_t> out;
  for (char32_t cp : *cps) {
    auto it = std::lower_bound(vocab.begin(), vocab.end(), cp);
    if (it == vocab.end() || *it != cp)
      throw ValueError("--prompt: the character " + describe(cp) + " is not in the model's vocabulary of " +
                       std::to_string(vocab.size()) + " characters");
    out.push_back(std::size_t(it - vocab.begin()));
  }
  return out;
}

// What generation starts from: the prompt, or a newline (the start of a
// fortune) when the prompt is empty.
std::vector<std::size_t> context_for(const std::vector<std::size_t>& prompt, const std::vector<char32_t>& vocab) {
  if (!prompt.empty()) return prompt;
  auto it = std::lower_bound(vocab.begin(), vocab.end(), U'\n');
  return {it != vocab.end() && *it == U'\n' ? std::size_t(it - vocab.begin()) : 0};
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  cli::App app{"Train a character-level language model (LSTM, GRU or GPT) on the fortunes text (Debian's fortunes\n"
               "package) with truncated backpropagation through time, or sample from a trained one.\n"
               "Each epoch prints train and validation loss in nats per character (the unigram baseline,\n"
               "the entropy of the character frequencies, is printed once) and a sample; metrics.csv,\n"
               "loss.png and the checkpoint checkpoint.npz go to --out."};
  std::string kinds_help;
  for (const auto& k : examples::language_model_kinds()) kinds_help += (kinds_help.empty() ? "" : ", ") + k;
  app.add_option("--model", c.model.kind, "The network: " + kinds_help)
      ->check(cli::IsMember(examples::language_model_kinds()))->capture_default_str();
  app.add_option("--embed", c.model.embed, "Embedding size")->check(cli::Range(1, 65536))->capture_default_str();
  app.add_option("--hidden", c.model.hidden, "Hidden size of each recurrent layer")
      ->check(cli::Range(1, 65536))->capture_default_str();
  app.add_option("--layers", c.model.layers, "Recurrent layers, or transformer layers for gpt")
      ->check(cli::Range(1, 64))->capture_default_str();
  app.add_option("--heads", c.model.heads, "Attention heads (gpt; they divide --embed)")
      ->check(cli::Range(1, 1024))->capture_default_str();
  app.add_option("--dropout", c.model.dropout, "Dropout between layers and before the output layer (training only)")
      ->check(cli::Range(0.0, 0.99))->capture_default_str();
  app.add_option("--data", c.data, "Directory whose text files (UTF-8, e.g. fortune files) make the corpus;\n"
                                   "other files (fortune's .dat indexes) are skipped")->capture_default_str();
  app.add_option("--limit-chars", c.limit_chars, "Use only the first N characters of the corpus (quick runs; 0: all)");
  app.add_option("--batch-size", c.batch, "Rows trained side by side")->check(cli::Range(1, 65536))->capture_default_str();
  app.add_option("--bptt", c.bptt, "Steps per window: backpropagation through time is truncated there")
      ->check(cli::Range(1, 65536))->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs to train")->check(cli::Range(1, 1000))->capture_default_str();
  app.add_option("--lr", c.lr, "Adam's learning rate")->check(cli::PositiveNumber)->capture_default_str();
  app.add_option("--clip", c.clip, "Clip the gradient norm of all parameters to this (0: no clipping)")
      ->check(cli::NonNegativeNumber)->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the one random generator (init, dropout, sampling)")->capture_default_str();
  app.add_option("--threads", c.threads, "Threads for BLAS and zerograd's kernels (0: one per core)")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--out", c.out, "Directory for metrics.csv, loss.png and checkpoint.npz")->capture_default_str();
  app.add_option("--resume", c.resume, "Continue from a checkpoint exactly where it stopped, for --epochs more epochs\n"
                                       "(the model's sizes come from the checkpoint; --lr sets a new learning rate)")
      ->check(cli::ExistingFile);
  app.add_option("--load", c.load, "A checkpoint to sample from (with --sample)")->check(cli::ExistingFile);
  app.add_option("--sample", c.sample, "Print the prompt and N characters generated after it from --load or\n"
                                       "--resume, then exit (nothing else goes to standard output)");
  app.add_option("--prompt", c.prompt, "Text the samples continue (empty: the start of a fortune)");
  app.add_option("--temperature", c.temperature, "Sampling temperature, > 0: below 1 more likely characters,\n"
                                                 "above 1 more surprising ones")->capture_default_str();
  app.add_option("--export-onnx", c.export_onnx, "After training, write the model as ONNX (opset 17) to this path");
  app.add_option("--stop-after", c.stop_after, "Raise SIGINT after this many steps (to test stopping and resuming)")
      ->group("");
  ZG_CLI_PARSE(app, argc, argv);

  try {
    if (!(c.temperature > 0)) throw ValueError("--temperature must be > 0, got " + std::to_string(c.temperature));
    zg::set_num_threads(c.threads);
    zg::manual_seed(c.seed);
    const std::string checkpoint_in = !c.load.empty() ? c.load : c.resume;

    if (c.sample > 0) {
      if (checkpoint_in.empty()) throw ValueError("--sample needs a checkpoint: --load CKPT");
      const Saved saved = read_saved(checkpoint_in);
      const auto prompt = encode_prompt(c.prompt, saved.vocab);
      auto model = examples::make_language_model(saved.model);
      nn::load_checkpoint(checkpoint_in, *model, [](const nn::NamedArrays&) {},
                          {true, [](const std::string&) { return true; }, 0});
      std::cout << c.prompt << show(saved.vocab, generate(*model, context_for(prompt, saved.vocab), c.sample,
                                                          c.temperature))
                << std::flush;
      return 0;
    }
    if (!c.load.empty()) throw ValueError("--load is for sampling: give --sample N too (or --resume to train on)");

    install_stop_handlers();
    fs::create_directories(c.out);
    std::cout << "reading " << c.data << " ..." << std::flush;
    Corpus corpus = read_corpus(c.data);
    if (c.limit_chars > 0 && corpus.text.size() > c.limit_chars) corpus.text.resize(c.limit_chars);
    std::cout << " " << corpus.text.size() << " characters from " << corpus.files.size() << " files";
    if (!corpus.skipped.empty()) std::cout << " (skipped " << corpus.skipped.size() << " that are not text)";
    std::cout << "\n";

    std::optional<Saved> saved;
    if (!c.resume.empty()) saved = read_saved(c.resume);
    const std::vector<char32_t> vocab = vocabulary(corpus.text);
    if (saved && saved->vocab != vocab)
      throw ValueError(c.resume + " was trained on another alphabet (" + std::to_string(saved->vocab.size()) +
                       " characters; this text has " + std::to_string(vocab.size()) +
                       "): resume with the same --data and --limit-chars");
    const auto prompt = encode_prompt(c.prompt, vocab);
    std::vector<std::size_t> tokens(corpus.text.size());
    for (std::size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = std::size_t(std::lower_bound(vocab.begin(), vocab.end(), corpus.text[i]) - vocab.begin());
    // The first 90% trains, the rest validates: text it never saw, from
    // other files (the files are in name order).
    const std::size_t split = tokens.size() * 9 / 10;
    const std::vector<std::size_t> train(tokens.begin(), tokens.begin() + std::ptrdiff_t(split)),
        valid(tokens.begin() + std::ptrdiff_t(split), tokens.end());
    if (train.size() < 2 * c.batch || train.size() / c.batch < 2 || valid.size() < 2)
      throw ValueError("the text (" + std::to_string(tokens.size()) + " characters) is too short for --batch-size " +
                       std::to_string(c.batch) + ": use more text or smaller batches");

    c.model.vocab = vocab.size();
    c.model.block = c.bptt;  // gpt: the position table covers one window
    if (saved) {
      const auto want = c.model;
      c.model = saved->model;
      c.model.dropout = want.dropout;
    }
    auto model = examples::make_language_model(c.model);
    optim::Adam adam(model->parameters(), static_cast<float>(c.lr));
    if (c.clip > 0) adam.set_max_grad_norm(static_cast<float>(c.clip));

    // The checkpoint holds the model, Adam's state, the model's kind, sizes
    // and alphabet (so --load rebuilds it), and where the run stood:
    // completed epochs, steps into the next, the generator and the state
    // carried between windows, so --resume continues the same run.
    int start_epoch = 0;
    std::size_t start_step = 0;
    nn::RecurrentState carried;
    if (saved) {
      // A default Tensor is 0-d with one element, so absence is kept apart.
      std::optional<Tensor<float>> generator, h, cell;
      nn::LoadOptions options;
      options.extra_names = [](const std::string& n) {
        return n.rfind("optimizer.", 0) == 0 || n.rfind("train.", 0) == 0 || n.rfind("lm.", 0) == 0;
      };
      nn::load_checkpoint(c.resume, *model, [&](const nn::NamedArrays& rest) {
        nn::NamedArrays opt;
        for (const auto& [name, a] : rest) {
          if (name == "train.epoch") start_epoch = static_cast<int>(optim::decode_count(a, name));
          else if (name == "train.step") start_step = static_cast<std::size_t>(optim::decode_count(a, name));
          else if (name == "train.generator") generator = a;
          else if (name == "train.state.h") h = a;
          else if (name == "train.state.c") cell = a;
          else if (name.rfind("optimizer.", 0) == 0) opt.emplace_back(name, a);
        }
        adam.load_state_dict(opt);
      }, options);
      if (app.count("--lr")) adam.set_lr(static_cast<float>(c.lr));
      if (generator) nn::decode_generator(*generator, zg::generator(), "train.generator");
      if (start_step > 0 && model->context_length() == 0) {  // a transformer carries no state
        if (!h) throw ValueError(c.resume + ": stopped within an epoch but holds no train.state.h");
        carried.h = Variable(*h);
        if (cell) carried.c = Variable(*cell);
      }
      std::cout << "resumed from " << c.resume << " after epoch " << start_epoch;
      if (start_step) std::cout << " and " << start_step << " steps of epoch " << start_epoch + 1;
      std::cout << "\n";
    }

    nn::data::SequenceBatches batches(train, c.batch, c.bptt);
    const std::size_t per_epoch = batches.batches_per_epoch();
    if (start_step > 0) batches.restore(start_step * c.bptt);
    const double baseline = unigram_entropy(train, vocab.size());
    std::cout << model->summary() << "vocabulary: " << vocab.size() << " characters; " << train.size()
              << " for training, " << valid.size() << " for validation; " << per_epoch << " steps per epoch\n"
              << "optimizer: Adam, lr " << adam.lr() << ", gradient norm clipped to " << c.clip << ", batch "
              << c.batch << ", bptt " << c.bptt << ", threads " << zg::num_threads() << "\n"
              << "unigram baseline (entropy of the training characters): " << std::fixed << std::setprecision(4)
              << baseline << " nats per character\n";

    const fs::path out(c.out);
    const std::string ck = (out / "checkpoint.npz").string();
    examples::MetricsCsv csv((out / "metrics.csv").string(), {"epoch", "train_loss", "val_loss", "seconds"});
    const double start = start_epoch + double(start_step) / double(per_epoch);
    if (saved) csv.keep_rows_until(start);
    examples::Series train_curve{"train loss (per step, smoothed)", {}}, val_curve{"validation loss", {}, true};
    for (const auto& row : csv.rows()) {
      train_curve.points.emplace_back(row[0], row[1]);
      val_curve.points.emplace_back(row[0], row[2]);
    }
    auto save = [&](int epochs_done, std::size_t steps_done, const nn::RecurrentState& state) {
      nn::NamedArrays extra = adam.state_dict();
      nn::NamedArrays all = model->state();
      all.insert(all.end(), extra.begin(), extra.end());
      std::string which;
      if (!examples::all_finite(all, which))
        throw ValueError("not saving " + ck + ": '" + which + "' holds a NaN or infinity (the last checkpoint is kept)");
      const auto& kinds = examples::language_model_kinds();
      extra.emplace_back(kKinds, floats({double(std::find(kinds.begin(), kinds.end(), c.model.kind) - kinds.begin())}));
      extra.emplace_back("lm.sizes", floats({double(c.model.embed), double(c.model.hidden), double(c.model.layers),
                                                   double(c.model.heads), double(c.model.block)}));
      std::vector<double> v(vocab.begin(), vocab.end());
      extra.emplace_back("lm.vocab", floats(v));
      extra.emplace_back("train.epoch", optim::encode_count(epochs_done));
      extra.emplace_back("train.step", optim::encode_count(static_cast<std::int64_t>(steps_done)));
      extra.emplace_back("train.generator", nn::encode_generator(zg::generator()));
      if (steps_done > 0 && state.defined()) {
        extra.emplace_back("train.state.h", state.h.data());
        if (state.c.defined()) extra.emplace_back("train.state.c", state.c.data());
      }
      nn::save_checkpoint(ck, *model, extra);
    };

    const int last_epoch = start_epoch + c.epochs;
    double smoothed = -1, reached = start;
    bool stopped = false;
    std::size_t steps_run = 0;
    for (int epoch = start_epoch + 1; epoch <= last_epoch && !stopped; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      const bool continuing = epoch == start_epoch + 1 && start_step > 0;
      std::size_t step = continuing ? start_step : 0;
      nn::RecurrentState state = continuing ? carried : nn::RecurrentState{};
      if (!continuing) batches.reset();
      std::ostringstream label;
      label << "epoch " << epoch << "/" << last_epoch;
      examples::ProgressBar bar(label.str(), per_epoch);
      model->train();
      nn::data::SequenceBatches::Batch b;
      double total = 0, recent = 0;
      std::size_t steps = 0;
      while (!stop_signal && batches.next(b)) {
        auto out_ = (*model)(b.x, state);
        // Truncated BPTT: the next window starts from these values, but its
        // backward stops here.
        state = out_.state.detach();
        const std::size_t n = b.x.size();
        Variable loss = nn::functional::cross_entropy(reshape(out_.logits, {n, vocab.size()}), reshape(b.y, {n}));
        const double l = loss.item();
        if (!std::isfinite(l)) {
          std::ostringstream msg;
          msg << label.str() << ", step " << step + 1 << " of " << per_epoch << ": the loss is " << l
              << "; training stopped before this step changed the parameters";
          throw examples::NonFiniteLoss(msg.str());
        }
        loss.backward();
        adam.step();
        adam.zero_grad();
        ++step;
        ++steps;
        total += l;
        recent = steps == 1 ? l : 0.95 * recent + 0.05 * l;
        smoothed = smoothed < 0 ? l : 0.98 * smoothed + 0.02 * l;
        train_curve.points.emplace_back(epoch - 1 + double(step) / double(per_epoch), smoothed);
        bar.update(step, recent);
        if (++steps_run == c.stop_after) std::raise(SIGINT);
      }
      stopped = stop_signal && step < per_epoch;
      const double mean = steps ? total / double(steps) : 0;
      std::ostringstream summary;
      summary << "mean loss " << std::fixed << std::setprecision(4) << mean << (stopped ? " (stopped)" : "");
      bar.finish(summary.str());
      if (stopped && steps == 0) break;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      reached = stopped ? epoch - 1 + double(step) / double(per_epoch) : epoch;
      const double val = evaluate(*model, valid, c.batch, c.bptt);
      std::cout << (stopped ? label.str() + " (stopped at step " + std::to_string(step) + ")"
                            : "epoch " + std::to_string(epoch))
                << ": train loss " << std::fixed << std::setprecision(4) << mean << ", validation loss " << val
                << " nats/char (unigram " << baseline << "), " << examples::format_seconds(seconds) << ", "
                << std::setprecision(1) << 1000 * seconds / double(std::max<std::size_t>(steps, 1)) << " ms/step\n";
      csv.add({reached, mean, val, seconds});
      val_curve.points.emplace_back(reached, val);
      if (stopped) save(epoch - 1, step, state);
      else save(epoch, 0, {});
      if (c.sample_every_epoch > 0 && !stopped) {
        // Drawn from its own generator, so that sampling does not change
        // the training run's random stream.
        const auto kept = zg::generator();
        std::cout << "sample: " << c.prompt
                  << show(vocab, generate(*model, context_for(prompt, vocab), c.sample_every_epoch, c.temperature))
                  << "\n";
        zg::generator() = kept;
      }
    }
    std::cout << "metrics: " << csv.path() << "\n";
    examples::Series unigram{"unigram baseline", {{start, baseline}, {std::max(reached, start + 1e-3), baseline}}};
    const std::string png = (out / "loss.png").string();
    examples::report_plot(examples::plot_lines(png, {train_curve, val_curve, unigram},
                                               {"character " + c.model.kind + " language model: loss", "epoch",
                                                "nats per character", false, false, start,
                                                std::max(reached, start + 1e-3)}),
                          png);
    std::cout << "checkpoint: " << ck << "\n";
    if (!c.export_onnx.empty() && !stopped) export_onnx(*model, valid, c.bptt, c.export_onnx);
    if (stopped) {
      const int sig = stop_signal.load();
      std::cerr << "train-lm: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << " at epoch " << std::fixed
                << std::setprecision(2) << reached << "; continue with --resume " << ck << "\n";
      return 128 + sig;
    }
  } catch (const examples::NonFiniteLoss& e) {
    std::cerr << "train-lm: " << e.what() << ".\nThe checkpoint in " << c.out
              << " keeps the last good epoch. Try a smaller --lr or --clip.\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "train-lm: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
