// Deep Learning from Scratch, chapter 2: AND, NAND and OR as single
// perceptrons with the book's weights, and XOR as two layers (NAND and OR into
// AND), computed with zerograd ops: y = step(x w + b), step being the mask
// zg::greater(., 0).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

#include "chapters.hpp"
#include "training.hpp"

namespace {

namespace fs = std::filesystem;
using zg::Variable;
using namespace zg::chapters;

int bit(const Variable& v, std::size_t i) { return int(v.data()(i)); }

void print_tables(const Variable& x) {
  const Variable a = AND(x), n = NAND(x), o = OR(x), s1 = NAND(x), s2 = OR(x), y = XOR(x);
  std::cout << "Single perceptrons, y = 1 if w1 x1 + w2 x2 + b > 0 else 0\n"
            << "  AND  w = (0.5, 0.5),   b = -0.7\n  NAND w = (-0.5, -0.5), b = 0.7\n"
            << "  OR   w = (0.5, 0.5),   b = -0.2\n\n"
            << "  x1 x2 | AND NAND OR\n  ------+------------\n";
  for (std::size_t i = 0; i < 4; ++i)
    std::cout << "   " << bit(x, 2 * i) << "  " << bit(x, 2 * i + 1) << " |  " << bit(a, i) << "    " << bit(n, i)
              << "   " << bit(o, i) << "\n";
  std::cout << "\nXOR as a two-layer perceptron: s1 = NAND(x1, x2), s2 = OR(x1, x2), y = AND(s1, s2)\n\n"
            << "  x1 x2 | s1 s2 | XOR\n  ------+-------+----\n";
  for (std::size_t i = 0; i < 4; ++i)
    std::cout << "   " << bit(x, 2 * i) << "  " << bit(x, 2 * i + 1) << " |  " << bit(s1, i) << "  " << bit(s2, i)
              << " |  " << bit(y, i) << "\n";
}

// Each gate's output on a grid over [-0.5, 1.5]^2, as "x1 x2 y" rows for
// gnuplot's image plot: the regions the perceptron separates.
std::string grid(const std::function<Variable(const Variable&)>& gate) {
  const std::size_t n = 201;
  zg::Tensor<float> pts = zg::Tensor<float>::from_shape({n * n, 2});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      pts(i * n + j, 0) = -0.5f + 2.f * float(j) / float(n - 1);
      pts(i * n + j, 1) = -0.5f + 2.f * float(i) / float(n - 1);
    }
  const Variable y = gate(Variable(pts));
  std::ostringstream out;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j)
      out << pts(i * n + j, 0) << " " << pts(i * n + j, 1) << " " << y.data()(i * n + j) << "\n";
    out << "\n";
  }
  return out.str();
}

// A gnuplot single-quoted string: only ' needs escaping, as ''.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// w1 x1 + w2 x2 + b = 0 solved for x2, as a gnuplot expression in x.
std::string line(const Perceptron& p) {
  std::ostringstream out;
  out << "-(" << p.w1 << "*x + " << p.b << ") / " << p.w2;
  return out.str();
}

std::string script(const fs::path& dir, const fs::path& png) {
  std::ostringstream s;
  s << "set terminal pngcairo size 1100,1000 font 'sans,11'\nset output " << quoted(png.string()) << "\n"
    << "set xrange [-0.5:1.5]\nset yrange [-0.5:1.5]\nset size ratio -1\nset xlabel 'x1'\nset ylabel 'x2'\n"
    << "set palette defined (0 '#f2f2f2', 1 '#b8d8f0')\nunset colorbox\nset cbrange [0:1]\n"
    << "set key bottom left opaque box font 'sans,9'\n"
    << "set multiplot layout 2,2 title 'Perceptrons of chapter 2: shaded where the output is 1' font 'sans,14'\n";
  struct Panel {
    std::string name, title, lines;
  };
  const std::vector<Panel> panels = {
      {"and", "AND: w = (0.5, 0.5), b = -0.7",
       line(AND) + " lw 2 lc rgb '#555555' title '0.5 x1 + 0.5 x2 - 0.7 = 0'"},
      {"nand", "NAND: w = (-0.5, -0.5), b = 0.7",
       line(NAND) + " lw 2 lc rgb '#555555' title '-0.5 x1 - 0.5 x2 + 0.7 = 0'"},
      {"or", "OR: w = (0.5, 0.5), b = -0.2",
       line(OR) + " lw 2 lc rgb '#555555' title '0.5 x1 + 0.5 x2 - 0.2 = 0'"},
      {"xor", "XOR = AND(NAND, OR): no single line separates it",
       line(NAND) + " lw 2 dt 2 lc rgb '#555555' title 'NAND line', " + line(OR) +
           " lw 2 dt 3 lc rgb '#555555' title 'OR line'"}};
  for (const auto& p : panels) {
    const std::string grid_file = quoted((dir / (p.name + "_grid.dat")).string());
    const std::string pts = quoted((dir / (p.name + "_points.dat")).string());
    s << "set title " << quoted(p.title) << "\n"
      << "plot " << grid_file << " using 1:2:3 with image notitle, " << p.lines << ", \\\n"
      << "  " << pts << " using 1:($3 == 1 ? $2 : 1/0) with points pt 7 ps 2.5 lc rgb '#d62728'"
      << " title 'output 1', \\\n  " << pts << " using 1:($3 == 0 ? $2 : 1/0) with points pt 6 ps 2.5 lw 2"
      << " lc rgb '#1f4e9c' title 'output 0'\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, chapter 2: AND, NAND and OR perceptrons with the book's weights\n"
      "and biases, and XOR as a two-layer perceptron (NAND and OR into AND), computed with zerograd\n"
      "ops (y = step(x w + b), step = zg::greater(., 0)). Prints the truth tables, writes them to\n"
      "DIR/truth_tables.csv and, with gnuplot, DIR/gates.png: each gate's regions and line.\n"
      "Nothing here is random, so there is no --seed; it runs in well under a second."};
  std::string out_dir = "out/ch2_perceptron";
  app.add_option("--out", out_dir, "Directory for the CSV, the plot data and the PNG")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    const fs::path dir = fs::absolute(out_dir);
    fs::create_directories(dir);
    const Variable x = truth_table_inputs();
    print_tables(x);

    zg::examples::MetricsCsv csv((dir / "truth_tables.csv").string(), {"x1", "x2", "and", "nand", "or", "xor"});
    const Variable a = AND(x), n = NAND(x), o = OR(x), y = XOR(x);
    for (std::size_t i = 0; i < 4; ++i)
      csv.add({x.data()(i, 0), x.data()(i, 1), a.data()(i), n.data()(i), o.data()(i), y.data()(i)});
    std::cout << "\ntruth tables: " << csv.path() << "\n";

    const std::vector<std::pair<std::string, std::function<Variable(const Variable&)>>> gates = {
        {"and", AND}, {"nand", NAND}, {"or", OR}, {"xor", XOR}};
    for (const auto& [name, gate] : gates) {
      zg::write_text_file((dir / (name + "_grid.dat")).string(), grid(gate));
      const Variable out = gate(x);
      std::ostringstream pts;
      for (std::size_t i = 0; i < 4; ++i)
        pts << x.data()(i, 0) << " " << x.data()(i, 1) << " " << out.data()(i) << "\n";
      zg::write_text_file((dir / (name + "_points.dat")).string(), pts.str());
    }
    const fs::path gp = dir / "gates.gp", png = dir / "gates.png";
    zg::write_text_file(gp.string(), script(dir, png));
    zg::examples::report_plot(zg::examples::run_gnuplot(gp.string()), png.string());
  } catch (const std::exception& e) {
    std::cerr << "ch2_perceptron: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
