#pragma once
// What the examples share to make training pleasant to watch: a progress
// bar, per-epoch metrics as CSV, plots through gnuplot, evaluation.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <zerograd/zerograd.hpp>

namespace zg::examples {

// Set by SIGINT/SIGTERM once install_stop_handlers() ran: the current step
// finishes, then the run stops cleanly with a checkpoint. The handler resets
// itself, so a second Ctrl-C kills at once. SA_RESTART: a signal during a
// blocking call (gnuplot's waitpid, a terminal write) does not fail it.
extern std::atomic<int> stop_signal;
void install_stop_handlers();

// Whether every value of every array is finite; if not, which names the
// first array holding a NaN or an infinity (a run checks this before it
// overwrites a good checkpoint).
bool all_finite(const nn::NamedArrays& arrays, std::string& which);

// A bar on a terminal (iterations, loss, speed, ETA), redrawn in place;
// plain lines every ~10% when stderr is not a terminal (logs, CI).
class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total);
  void update(std::size_t done, double loss);
  void finish(const std::string& summary = {});

 private:
  std::string label_;
  std::size_t total_;
  bool tty_;
  std::size_t last_tenth_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Rows of numbers with a header, rewritten atomically after each add().
class MetricsCsv {
 public:
  MetricsCsv(std::string path, std::vector<std::string> columns);
  void add(const std::vector<double>& row);
  // Takes over the rows of an existing file at path (same columns) whose
  // first value is at most `last`: a resumed run appends to its CSV.
  void keep_rows_until(double last);
  const std::string& path() const { return path_; }
  const std::vector<std::vector<double>>& rows() const { return rows_; }

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

bool gnuplot_available();

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
  // Measured at a few moments (a test set after each epoch): drawn as
  // points, joined by lines only when there are three or more, so that two
  // evaluations do not read as a measured curve between them.
  bool evaluations = false;
};
struct PlotOptions {
  std::string title, xlabel, ylabel;
  bool logy = false;
  bool points = false;  // draw point markers too
  double xmin = NAN, xmax = NAN;  // fixed x range when both are set
  std::string key = "top right";  // where the legend goes: bottom right for rising curves
};
// Draws series as lines to a PNG with gnuplot; false (and nothing written)
// when gnuplot is not installed. The data and script are written beside it.
// An x axis labelled "epoch" spanning 2 or more gets ticks at whole epochs.
bool plot_lines(const std::string& png, const std::vector<Series>& series, const PlotOptions& options);
// One heat map: values[row][column] in [0, 1], a label per column (x) and
// per row (y); row 0 is drawn at the top.
struct Heatmap {
  std::string title;
  std::vector<std::string> x_labels, y_labels;
  std::vector<std::vector<double>> values;
};
struct HeatmapOptions {
  std::string title, xlabel, ylabel;
  std::size_t columns = 2;  // maps side by side; as many rows as needed
};
// Draws the maps in a grid to a PNG with gnuplot (greyscale, 0 black, 1
// white, as the sequel draws attention weights); false (and nothing
// written) when gnuplot is not installed. Data and script go beside it.
bool plot_heatmaps(const std::string& png, const std::vector<Heatmap>& maps, const HeatmapOptions& options);
// Runs a gnuplot script file; false if gnuplot is missing or failed.
bool run_gnuplot(const std::string& script_path);
// Prints where a plot went, or the one-line note that gnuplot is missing.
void report_plot(bool made, const std::string& png);

// Accuracy and mean loss of model over data, in eval mode (EvalModeGuard)
// under no_grad; the model's own train/eval flag is not touched.
struct Evaluation {
  double loss = 0, accuracy = 0;
};
Evaluation evaluate(nn::Module& model, const nn::data::TensorDataset& data, bool flatten, std::size_t batch = 500);

// How train_epoch runs and stops.
struct EpochOptions {
  bool reset = true;              // start a new (reshuffled) epoch; false: go on where the loader stands
  bool stop_on_nonfinite = true;  // a NaN or infinite loss throws NonFiniteLoss before its step is applied
  const std::atomic<int>* stop = nullptr;  // nonzero: stop before the next step (Ctrl-C)
  bool progress = true;                    // draw the progress bar (rank 0 only, when data-parallel)
};
struct EpochResult {
  double mean_loss = 0;  // over the steps this call ran
  std::size_t steps = 0;
  bool stopped = false;  // by *options.stop, before the epoch's end
};
class NonFiniteLoss : public ValueError {
 public:
  using ValueError::ValueError;
};

// One epoch: for each batch, loss = softmax_cross_entropy(model(x), t),
// backward, then `step` (the optimizer's update and zero_grad), with a
// progress bar. Each batch's loss is appended to iteration_losses when given.
EpochResult train_epoch(nn::Module& model, nn::data::DataLoader& loader, const std::function<void()>& step,
                        const std::string& label, const EpochOptions& options = {},
                        std::vector<double>* iteration_losses = nullptr);

// Formats seconds as "1m 05s" / "12.3s".
std::string format_seconds(double s);

}  // namespace zg::examples
