#include "training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include <signal.h>
#include <unistd.h>

namespace zg::examples {

// Lock-free: safe in a signal handler, which may run on any of the
// process's threads (the pool's workers too).
std::atomic<int> stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void zerograd_examples_request_stop(int sig) { stop_signal.store(sig, std::memory_order_relaxed); }

bool all_finite(const nn::NamedArrays& arrays, std::string& which) {
  for (const auto& [name, a] : arrays)
    for (float v : a)
      if (!std::isfinite(v)) {
        which = name;
        return false;
      }
  return true;
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = zerograd_examples_request_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string format_seconds(double s) {
  std::ostringstream out;
  if (s >= 60) out << int(s / 60) << "m " << std::setw(2) << std::setfill('0') << int(std::fmod(s, 60)) << "s";
  else out << std::fixed << std::setprecision(1) << s << "s";
  return out.str();
}

ProgressBar::ProgressBar(std::string label, std::size_t total)
    : label_(std::move(label)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(std::size_t done, double loss) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? double(done) / elapsed : 0;
  const double eta = rate > 0 ? double(total_ - done) / rate : 0;
  std::ostringstream line;
  line << label_ << " " << std::setw(5) << done << "/" << total_;
  if (tty_) {
    if (done != total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    const int width = 30;
    const int filled = total_ ? int(double(width) * double(done) / double(total_)) : width;
    std::cerr << "\r" << label_ << " [" << std::string(filled, '#') << std::string(width - filled, '.') << "] "
              << done << "/" << total_ << "  loss " << std::fixed << std::setprecision(4) << loss << "  "
              << std::setprecision(1) << rate << " it/s  ETA " << format_seconds(eta) << "   " << std::flush;
    return;
  }
  const std::size_t tenth = total_ ? done * 10 / total_ : 10;
  if (tenth == last_tenth_ && done != total_) return;
  last_tenth_ = tenth;
  std::cerr << line.str() << "  loss " << std::fixed << std::setprecision(4) << loss << "  " << std::setprecision(1)
            << rate << " it/s  ETA " << format_seconds(eta) << "\n";
}

void ProgressBar::finish(const std::string& summary) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) std::cerr << "\r\033[K";
  std::cerr << label_ << " done in " << format_seconds(elapsed) << (summary.empty() ? "" : "  " + summary) << "\n";
}

MetricsCsv::MetricsCsv(std::string path, std::vector<std::string> columns)
    : path_(std::move(path)), columns_(std::move(columns)) {}

void MetricsCsv::add(const std::vector<double>& row) {
  if (row.size() != columns_.size())
    throw ValueError("MetricsCsv: row of " + std::to_string(row.size()) + " values for " +
                     std::to_string(columns_.size()) + " columns");
  rows_.push_back(row);
  std::ostringstream out;
  for (std::size_t i = 0; i < columns_.size(); ++i) out << (i ? "," : "") << columns_[i];
  out << "\n" << std::setprecision(8);
  for (const auto& r : rows_) {
    for (std::size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << r[i];
    out << "\n";
  }
  write_text_file(path_, out.str());
}

void MetricsCsv::keep_rows_until(double last) {
  std::ifstream in(path_);
  std::string line;
  if (!std::getline(in, line)) return;
  std::string header;
  for (std::size_t i = 0; i < columns_.size(); ++i) header += (i ? "," : "") + columns_[i];
  if (line != header) return;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::strtod(cell.c_str(), nullptr));
    // The file holds 8 significant digits: 1 + 4/11 was written as 1.3636364.
    if (row.size() == columns_.size() && row[0] <= last + 1e-7 * std::max(1.0, std::abs(last))) rows_.push_back(row);
  }
}

namespace {
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
}  // namespace

bool gnuplot_available() {
  static const bool available = std::system("command -v gnuplot >/dev/null 2>&1") == 0;
  return available;
}

bool run_gnuplot(const std::string& script_path) {
  return gnuplot_available() && run_quietly({"gnuplot", script_path});
}

namespace {
// gnuplot's style for one series: see Series::evaluations.
std::string style(const Series& s, const PlotOptions& o) {
  if (s.evaluations) return s.points.size() >= 3 ? "linespoints pt 7 ps 1.2 lw 2" : "points pt 7 ps 1.6";
  return o.points ? "linespoints lw 2" : "lines lw 2";
}
}  // namespace

bool plot_lines(const std::string& png, const std::vector<Series>& series, const PlotOptions& o) {
  if (!gnuplot_available()) return false;
  const std::string base = png.substr(0, png.size() - (png.size() > 4 ? 4 : 0));
  std::ostringstream data;
  data << std::setprecision(8);
  for (const auto& s : series) {
    data << "# " << s.name << "\n";
    for (const auto& [x, y] : s.points) data << x << " " << y << "\n";
    data << "\n\n";
  }
  write_text_file(base + ".dat", data.str());
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,560 font 'Helvetica,11'\n"
     << "set output " << quote(png) << "\n"
     << "set title " << quote(o.title) << "\nset xlabel " << quote(o.xlabel) << "\nset ylabel " << quote(o.ylabel)
     << "\nset grid\nset key " << o.key << "\n"
     << (o.logy ? "set logscale y\n" : "");
  if (!std::isnan(o.xmin) && !std::isnan(o.xmax)) gp << "set xrange [" << o.xmin << ":" << o.xmax << "]\n";
  // Epochs tick at whole numbers once there are two or more (gnuplot put
  // ticks at 0.5, 1.5, ... for a few epochs); shorter runs keep its ticks.
  if (o.xlabel == "epoch") {
    double lo = o.xmin, hi = o.xmax;
    if (std::isnan(lo) || std::isnan(hi)) {
      lo = INFINITY, hi = -INFINITY;
      for (const auto& s : series)
        for (const auto& point : s.points) lo = std::min(lo, point.first), hi = std::max(hi, point.first);
    }
    if (hi - lo >= 2) gp << "set xtics " << std::ceil((hi - lo) / 10) << "\n";
  }
  gp << "plot ";
  for (std::size_t i = 0; i < series.size(); ++i)
    gp << (i ? ", " : "") << quote(base + ".dat") << " index " << i << " with " << style(series[i], o)
       << " title " << quote(series[i].name);
  gp << "\n";
  write_text_file(base + ".gp", gp.str());
  return run_gnuplot(base + ".gp");
}

bool plot_heatmaps(const std::string& png, const std::vector<Heatmap>& maps, const HeatmapOptions& o) {
  if (maps.empty()) throw ValueError("plot_heatmaps: no maps to draw in " + png);
  for (const auto& m : maps) {
    bool fits = m.values.size() == m.y_labels.size() && !m.x_labels.empty() && !m.y_labels.empty();
    for (const auto& row : m.values) fits = fits && row.size() == m.x_labels.size();
    if (!fits)
      throw ValueError("plot_heatmaps: '" + m.title + "' needs " + std::to_string(m.y_labels.size()) + " rows of " +
                       std::to_string(m.x_labels.size()) + " values (one per label), got " +
                       std::to_string(m.values.size()) + " rows");
  }
  if (!gnuplot_available()) return false;
  const std::string base = png.substr(0, png.size() - (png.size() > 4 ? 4 : 0));
  std::ostringstream data;
  data << std::setprecision(6);
  for (const auto& m : maps) {
    for (const auto& row : m.values) {
      for (std::size_t x = 0; x < row.size(); ++x) data << (x ? " " : "") << row[x];
      data << "\n";
    }
    data << "\n\n";
  }
  write_text_file(base + ".dat", data.str());
  const std::size_t cols = std::max<std::size_t>(1, std::min(o.columns, maps.size()));
  const std::size_t rows = (maps.size() + cols - 1) / cols;
  auto tics = [](const std::vector<std::string>& labels) {
    std::string t = "(";
    for (std::size_t i = 0; i < labels.size(); ++i) t += (i ? ", " : "") + quote(labels[i]) + " " + std::to_string(i);
    return t + ")";
  };
  std::ostringstream gp;
  // noenhanced: '_' and '^' in labels are characters, not sub/superscripts.
  gp << "set terminal pngcairo noenhanced size " << 520 * cols << "," << 330 * rows + 40 << " font 'Helvetica,10'\n"
     << "set output " << quote(png) << "\n"
     << "set palette gray\nset cbrange [0:1]\nunset key\nset tics scale 0\n"
     << "set multiplot layout " << rows << "," << cols << " title " << quote(o.title) << "\n"
     << "set xlabel " << quote(o.xlabel) << "\nset ylabel " << quote(o.ylabel) << "\n";
  for (std::size_t i = 0; i < maps.size(); ++i) {
    const Heatmap& m = maps[i];
    gp << "set title " << quote(m.title) << "\nset xtics " << tics(m.x_labels) << "\nset ytics "
       << tics(m.y_labels) << "\nset xrange [-0.5:" << double(m.x_labels.size()) - 0.5 << "]\nset yrange ["
       << double(m.y_labels.size()) - 0.5 << ":-0.5]\n"
       << "plot " << quote(base + ".dat") << " index " << i << " matrix with image\n";
  }
  gp << "unset multiplot\n";
  write_text_file(base + ".gp", gp.str());
  return run_gnuplot(base + ".gp");
}

void report_plot(bool made, const std::string& png) {
  if (made) std::cout << "plot: " << png << "\n";
  else std::cout << "plot: skipped (" << png << "): install gnuplot-nox to get PNG plots\n";
}

Evaluation evaluate(nn::Module& model, const nn::data::TensorDataset& data, bool flatten, std::size_t batch) {
  nn::EvalModeGuard eval_mode;
  NoGradGuard no_grad;
  nn::data::DataLoader loader(data, {batch, false, false, flatten});
  nn::data::DataLoader::Batch b;
  double loss = 0, correct = 0;
  while (loader.next(b)) {
    Variable y = model(b.x);
    const double n = double(b.t.size());
    loss += nn::functional::softmax_cross_entropy(y, b.t).item() * n;
    correct += nn::functional::accuracy(y, b.t) * n;
  }
  const double n = double(std::max<std::size_t>(data.size(), 1));
  return {loss / n, correct / n};
}

EpochResult train_epoch(nn::Module& model, nn::data::DataLoader& loader, const std::function<void()>& step,
                        const std::string& label, const EpochOptions& options, std::vector<double>* iteration_losses) {
  model.train();
  if (options.reset) loader.reset();
  const std::size_t per_epoch = loader.batches_per_epoch();
  const std::size_t first = loader.cursor() / loader.global_batch_size();  // steps done before, when continuing an epoch
  std::optional<ProgressBar> bar;
  if (options.progress) bar.emplace(label, per_epoch);
  nn::data::DataLoader::Batch b;
  EpochResult r;
  double total = 0, recent = 0;
  while (!(options.stop && *options.stop) && loader.next(b)) {
    Variable loss = nn::functional::softmax_cross_entropy(model(b.x), b.t);
    const double l = loss.item();
    if (options.stop_on_nonfinite && !std::isfinite(l)) {
      std::ostringstream msg;
      msg << label << ", step " << first + r.steps + 1 << " of " << per_epoch << ": the loss is " << l
          << "; training stopped before this step changed the parameters";
      throw NonFiniteLoss(msg.str());
    }
    loss.backward();
    step();
    if (iteration_losses) iteration_losses->push_back(l);
    total += l;
    recent = r.steps == 0 ? l : 0.95 * recent + 0.05 * l;
    ++r.steps;
    if (bar) bar->update(first + r.steps, recent);
  }
  r.stopped = loader.cursor() < loader.samples() && options.stop && *options.stop;
  r.mean_loss = r.steps ? total / double(r.steps) : 0;
  std::ostringstream s;
  s << "mean loss " << std::fixed << std::setprecision(4) << r.mean_loss << (r.stopped ? " (stopped)" : "");
  if (bar && (r.steps > 0 || !r.stopped)) bar->finish(s.str());
  return r;
}

}  // namespace zg::examples
