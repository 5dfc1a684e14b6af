// Chapter 6's comparison of optimizers: each one minimizes
// f(x, y) = x^2 / 20 + y^2 from (-7, 2). f is flat along x and steep along y,
// so the paths show how each method handles a badly scaled problem. Writes each
// path as CSV and, when gnuplot is installed, all six on the contour of f.

#include <cstdio>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include <zerograd/optim.hpp>
#include <zerograd/zerograd.hpp>

#include "training.hpp"


namespace {

namespace fs = std::filesystem;
using namespace zg::optim;

struct Entry {
  std::string name, file;
  float lr;  // the book's comparison
  std::function<std::unique_ptr<Optimizer>(Params, float)> make;
};

template <class O>
std::unique_ptr<Optimizer> make(Params params, float lr) {
  return std::make_unique<O>(std::move(params), lr);
}

// The book's four panels first, then Nesterov and RMSprop.
const std::vector<Entry> kEntries = {
    {"SGD", "sgd", 0.95f, make<SGD>},          {"Momentum", "momentum", 0.1f, make<Momentum>},
    {"AdaGrad", "adagrad", 1.5f, make<AdaGrad>}, {"Adam", "adam", 0.3f, make<Adam>},
    {"Nesterov", "nesterov", 0.1f, make<Nesterov>}, {"RMSprop", "rmsprop", 0.3f, make<RMSprop>}};

zg::Variable f(const zg::Variable& x, const zg::Variable& y) { return zg::square(x) / 20.f + zg::square(y); }

struct Point {
  float x, y, f;
};

// The start and the point after each of the steps.
std::vector<Point> descend(const Entry& e, int steps) {
  zg::Variable x(-7.f, "x"), y(2.f, "y");
  x.requires_grad_();
  y.requires_grad_();
  auto opt = e.make({x, y}, e.lr);
  std::vector<Point> path;
  for (int t = 0;; ++t) {
    opt->zero_grad();
    const zg::Variable z = f(x, y);
    path.push_back({x.item(), y.item(), z.item()});
    if (t == steps) break;
    z.backward();
    opt->step();
  }
  return path;
}

std::string csv(const std::vector<Point>& path) {
  std::ostringstream out;
  out << "step,x,y,f\n" << std::setprecision(9);
  for (std::size_t t = 0; t < path.size(); ++t)
    out << t << ',' << path[t].x << ',' << path[t].y << ',' << path[t].f << '\n';
  return out.str();
}

// A gnuplot single-quoted string: only ' needs escaping, as ''.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Each panel is a splot seen from above: gnuplot draws the contour of f and
// the path (z = 0) in one plot.
std::string gnuplot_script(const fs::path& dir, const fs::path& png, int steps) {
  std::ostringstream s;
  s << "f(x, y) = x**2 / 20.0 + y**2\n"
       "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
       "  set terminal pngcairo size 1500,920 font 'sans,11'\n"
       "} else {\n"
       "  set terminal png size 1500,920\n"
       "}\n"
       "set output " << quoted(png.string()) << "\n"
       "set datafile separator comma\n"
       "set xrange [-10:10]\n"
       "set yrange [-5:5]\n"
       "set isosamples 150, 150\n"
       "set view map\n"
       "set contour base\n"
       "set cntrparam levels discrete 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7\n"
       "unset clabel\n"
       "set xlabel 'x'\n"
       "set ylabel 'y'\n"
       "set key top right opaque box font 'sans,9'\n"
       "set label 1 at 0, 0, 0 '' point pt 1 ps 2.5 lw 2 lc rgb 'black' front\n"
       "set multiplot layout 2,3 title 'Optimizers minimizing f(x, y) = x^2/20 + y^2 from (-7, 2), "
    << steps << " steps' font 'sans,15'\n";
  for (const auto& e : kEntries) {
    std::ostringstream lr;
    lr << e.lr;
    s << "set title '" << e.name << " (lr " << lr.str() << ")' font 'sans,13'\n"
      << "splot f(x, y) nosurface lc rgb '#9a9a9a' title 'contours f = 0.25, 0.5, 1, 2, ..., 7', \\\n"
      << "      " << quoted((dir / (e.file + ".csv")).string())
      << " skip 1 using 2:3:(0) nocontours with linespoints pt 7 ps 0.6 lw 1.5 lc rgb '#d62728'"
         " title 'path from (-7, 2)', \\\n"
      << "      keyentry with points pt 1 ps 2.5 lw 2 lc rgb 'black' title 'minimum (0, 0)'\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, chapter 6: SGD, Momentum, AdaGrad, Adam, Nesterov and RMSprop\n"
      "minimize f(x, y) = x^2/20 + y^2 from (-7, 2). Writes DIR/<optimizer>.csv (step,x,y,f) and,\n"
      "when gnuplot is installed, DIR/optimizer_paths.png with every path on the contour of f."};
  std::string out_dir = "out/optimizer_paths";
  int steps = 30;
  app.add_option("--out", out_dir, "Directory for the CSV files and the PNG")->capture_default_str();
  app.add_option("--steps", steps, "Steps per optimizer")->check(cli::Range(1, 100000))->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    const fs::path dir = fs::absolute(out_dir);
    fs::create_directories(dir);
    std::cout << std::left << std::setw(10) << "optimizer" << std::setw(7) << "lr" << std::setw(13) << "final x"
              << std::setw(13) << "final y" << "final f\n";
    for (const auto& e : kEntries) {
      const auto path = descend(e, steps);
      zg::write_text_file((dir / (e.file + ".csv")).string(), csv(path));
      const Point& last = path.back();
      std::cout << std::setw(10) << e.name << std::setw(7) << e.lr << std::setw(13) << last.x << std::setw(13)
                << last.y << last.f << "\n";
    }
    std::cout << "\nPaths written to " << (dir / "<optimizer>.csv").string() << "\n";

    const fs::path script = dir / "optimizer_paths.gp", png = dir / "optimizer_paths.png";
    const fs::path tmp_png = dir / "optimizer_paths.png.tmp";
    zg::write_text_file(script.string(), gnuplot_script(dir, tmp_png, steps));
    if (zg::examples::run_gnuplot(script.string())) {
      fs::rename(tmp_png, png);
      std::cout << "Figure written to " << png.string() << "\n";
    } else {
      std::error_code ignored;
      fs::remove(tmp_png, ignored);
      std::cout << "No figure: gnuplot is not installed or failed (apt-get install gnuplot-nox); the script is "
                << script.string() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "optimizer_paths: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
