#pragma once
// What the sequel's sequence-to-sequence lessons (seq2seq_addition,
// attention_dates) share: their options, the ones a checkpoint fixes, a
// checkpoint written only when every value is finite, and the loop over an
// epoch's steps that stops and resumes exactly.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "training.hpp"

namespace zg::examples {

// What a lesson runs with; each sets its own defaults (epochs, out) before
// add_lesson_options shows them.
struct LessonConfig {
  std::size_t samples = 50000, batch = 128, embed = 16, hidden = 128, stop_after = 0;
  int epochs = 6, threads = 0;
  double lr = 0.001, clip = 5.0;
  std::uint64_t seed = 1;
  std::string out, resume;
};
// How a lesson words the options that differ.
struct LessonHelp {
  std::string samples;  // "Problems generated (90% train, 10% test)"
  std::size_t max_samples;
  std::string seed, out;
};
// --samples, --epochs, --batch-size, --embed, --hidden, --lr, --clip,
// --seed, --threads, --out, --resume and the hidden --stop-after.
void add_lesson_options(cli::App& app, LessonConfig& c, const LessonHelp& help);

// Whole numbers (sizes, a seed, a count) as one float32 entry, each as two
// exact parts (optim::encode_count): exact below 2^48.
Tensor<float> encode_counts(const std::vector<std::uint64_t>& values);
// n of them back; ValueError naming key when the entry holds another number.
std::vector<std::uint64_t> decode_counts(const Tensor<float>& t, std::size_t n, const std::string& key);

// Options whose values a checkpoint fixes (sizes, data, batch size): its
// entry `key` holds them in order.
struct FixedOptions {
  std::string key;                                              // "dates.sizes"
  std::vector<std::pair<std::string, std::uint64_t*>> options;  // {"--embed", &config.embed}, ...
};
// A lesson's: "<prefix>.sizes" (--embed, --hidden) and "<prefix>.data"
// (--samples, --seed, --batch-size).
std::vector<FixedOptions> lesson_fixed_options(LessonConfig& c, const std::string& prefix);
// Their entries, to save beside the model.
nn::NamedArrays fixed_option_entries(const std::vector<FixedOptions>& fixed);
// Reads them back from the checkpoint at path, before the model exists, into
// the options' variables. An option the command line gave with another value
// is a ValueError naming both values; a file without one of the entries is
// not a checkpoint of `program`.
void read_fixed_options(const std::string& path, const std::string& program, const std::vector<FixedOptions>& fixed,
                        const cli::App& app);

// nn::save_checkpoint(path, model, extra) (atomic), unless a value of either
// is a NaN or an infinity: then a ValueError names it and the last
// checkpoint is kept.
void save_finite_checkpoint(const std::string& path, const nn::Module& model, const nn::NamedArrays& extra);

// Steps first, first + 1, ... of an epoch of `total`, until its end or a
// stop (stop_signal): loss_of(step) builds the step's loss; a NaN or an
// infinity throws NonFiniteLoss (naming label and the step) before the step
// changes anything; otherwise backward, then update (the optimizer's step
// and zero_grad). A progress bar shows the smoothed loss and finishes with
// the mean over the steps run.
EpochResult run_steps(const std::string& label, std::size_t first, std::size_t total,
                      const std::function<Variable(std::size_t step)>& loss_of, const std::function<void()>& update);

// "resumed from PATH after epoch E" and " and S steps of epoch E + 1" when S > 0.
std::string resumed_message(const std::string& path, int epoch, std::size_t step);

}  // namespace zg::examples
