#include "resume.hpp"

#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "cli.hpp"

namespace zg::examples {

void add_lesson_options(cli::App& app, LessonConfig& c, const LessonHelp& help) {
  app.add_option("--samples", c.samples, help.samples)
      ->check(cli::Range(std::size_t(20), help.max_samples))->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs")->check(cli::Range(1, 1000))->capture_default_str();
  app.add_option("--batch-size", c.batch, "Batch size")->check(cli::Range(1, 100000))->capture_default_str();
  app.add_option("--embed", c.embed, "Character embedding size")->check(cli::Range(1, 4096))->capture_default_str();
  app.add_option("--hidden", c.hidden, "LSTM hidden size")->check(cli::Range(1, 4096))->capture_default_str();
  app.add_option("--lr", c.lr, "Adam's learning rate")->check(cli::PositiveNumber)->capture_default_str();
  app.add_option("--clip", c.clip, "Gradient norm clipping (0: none)")->check(cli::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", c.seed, help.seed)
      ->check(cli::Range(std::uint64_t(0), (std::uint64_t(1) << 48) - 1))->capture_default_str();
  app.add_option("--threads", c.threads, "Threads (0: one per core)")->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--out", c.out, help.out)->capture_default_str();
  app.add_option("--resume", c.resume, "Continue from a checkpoint exactly where it stopped, for --epochs more epochs\n"
                                       "(sizes, data and batch size come from the checkpoint;\n"
                                       "--lr sets a new learning rate)")
      ->check(cli::ExistingFile);
  app.add_option("--stop-after", c.stop_after, "Raise SIGINT after this many steps (to test stopping and resuming)")
      ->group("");
}

std::vector<FixedOptions> lesson_fixed_options(LessonConfig& c, const std::string& prefix) {
  return {{prefix + ".sizes", {{"--embed", &c.embed}, {"--hidden", &c.hidden}}},
          {prefix + ".data", {{"--samples", &c.samples}, {"--seed", &c.seed}, {"--batch-size", &c.batch}}}};
}

Tensor<float> encode_counts(const std::vector<std::uint64_t>& values) {
  Tensor<float> t = Tensor<float>::from_shape({2 * values.size()});
  std::size_t i = 0;
  for (std::uint64_t v : values) {
    const Tensor<float> c = optim::encode_count(static_cast<std::int64_t>(v));
    t(i++) = c(0);
    t(i++) = c(1);
  }
  return t;
}

std::vector<std::uint64_t> decode_counts(const Tensor<float>& t, std::size_t n, const std::string& key) {
  if (t.size() != 2 * n)
    throw ValueError("'" + key + "': expected " + std::to_string(2 * n) + " values, got " + std::to_string(t.size()));
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(static_cast<std::uint64_t>(optim::decode_count(Tensor<float>({t(2 * i), t(2 * i + 1)}), key)));
  return out;
}

nn::NamedArrays fixed_option_entries(const std::vector<FixedOptions>& fixed) {
  nn::NamedArrays out;
  for (const auto& f : fixed) {
    std::vector<std::uint64_t> values;
    for (const auto& o : f.options) values.push_back(*o.second);
    out.emplace_back(f.key, encode_counts(values));
  }
  return out;
}

void read_fixed_options(const std::string& path, const std::string& program, const std::vector<FixedOptions>& fixed,
                        const cli::App& app) {
  nn::NpzReader zip(path);
  std::map<std::string, Tensor<float>> entries;
  for (const auto& m : zip.members())
    for (const auto& f : fixed)
      if (m.name == f.key) entries[m.name] = zip.read_float(m, zip.header(m));
  for (const auto& f : fixed)
    if (!entries.count(f.key))
      throw ValueError(path + " is not a " + program + " checkpoint: it has no '" + f.key + "'");
  // Every value is checked before any option changes.
  std::vector<std::vector<std::uint64_t>> saved;
  for (const auto& f : fixed) {
    saved.push_back(decode_counts(entries[f.key], f.options.size(), f.key));
    for (std::size_t i = 0; i < f.options.size(); ++i) {
      const auto& [option, value] = f.options[i];
      if (app.count(option) && *value != saved.back()[i])
        throw ValueError(option + " " + std::to_string(*value) + " differs from " + path + "'s " +
                         std::to_string(saved.back()[i]) + ": leave it out to resume");
    }
  }
  for (std::size_t k = 0; k < fixed.size(); ++k)
    for (std::size_t i = 0; i < fixed[k].options.size(); ++i) *fixed[k].options[i].second = saved[k][i];
}

void save_finite_checkpoint(const std::string& path, const nn::Module& model, const nn::NamedArrays& extra) {
  nn::NamedArrays all = model.state();
  all.insert(all.end(), extra.begin(), extra.end());
  std::string which;
  if (!all_finite(all, which))
    throw ValueError("not saving " + path + ": '" + which + "' holds a NaN or infinity (the last checkpoint is kept)");
  nn::save_checkpoint(path, model, extra);
}

EpochResult run_steps(const std::string& label, std::size_t first, std::size_t total,
                      const std::function<Variable(std::size_t step)>& loss_of, const std::function<void()>& update) {
  ProgressBar bar(label, total);
  EpochResult r;
  double sum = 0, recent = 0;
  std::size_t step = first;
  for (; step < total && !stop_signal; ++step) {
    Variable loss = loss_of(step);
    const double l = loss.item();
    if (!std::isfinite(l)) {
      std::ostringstream msg;
      msg << label << ", step " << step + 1 << " of " << total << ": the loss is " << l
          << "; training stopped before this step changed the parameters";
      throw NonFiniteLoss(msg.str());
    }
    loss.backward();
    update();
    ++r.steps;
    sum += l;
    recent = r.steps == 1 ? l : 0.95 * recent + 0.05 * l;
    bar.update(step + 1, recent);
  }
  r.stopped = stop_signal && step < total;
  r.mean_loss = r.steps ? sum / double(r.steps) : 0;
  std::ostringstream summary;
  summary << "mean loss " << std::fixed << std::setprecision(4) << r.mean_loss << (r.stopped ? " (stopped)" : "");
  bar.finish(summary.str());
  return r;
}

std::string resumed_message(const std::string& path, int epoch, std::size_t step) {
  std::string s = "resumed from " + path + " after epoch " + std::to_string(epoch);
  if (step) s += " and " + std::to_string(step) + " steps of epoch " + std::to_string(epoch + 1);
  return s;
}

}  // namespace zg::examples
