// The apple-shopping graph of Deep Learning from Scratch, chapter 5, run by
// zerograd's own Mul and Add nodes: values forward, gradients backward, node
// by node, then drawn as a picture.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

namespace {

using zg::Variable64;

std::string label(const Variable64& v) {
  return (v.name().empty() ? std::string("(unnamed)") : v.name()) + " (" + zg::number_str(v.item()) + ")";
}

struct Narrator {
  bool step_mode = false;
  int count = 0;
  void pause() const {
    if (!step_mode) return;
    std::cout << "      [Enter]" << std::flush;
    std::string line;
    std::getline(std::cin, line);
  }
  // Names the output of the node that just ran and tells what it did.
  Variable64 forward(Variable64 y, const std::string& name) {
    y.set_name(name);
    const auto& f = *y.creator();
    const char* sign = f.name() == "Mul" ? " x " : " + ";
    std::cout << "  [" << ++count << "] " << std::left << std::setw(4) << f.name() << std::right
              << label(f.inputs()[0]) << sign << label(f.inputs()[1]) << "  ->  " << name << " = "
              << zg::number_str(y.item()) << "\n";
    pause();
    return y;
  }
  void backward(const zg::BackwardStep<double>& s) {
    const std::string out = s.outputs[0].defined() ? s.outputs[0].name() : "output";
    const double upstream = s.output_grads[0].item();
    std::cout << "  [" << ++count << "] " << s.function.name() << " node that made " << out
              << ": upstream gradient d price / d " << out << " = " << zg::number_str(upstream) << "\n";
    for (std::size_t i = 0; i < s.inputs.size(); ++i) {
      std::cout << "        " << std::left << std::setw(12) << s.inputs[i].name() << std::right << " receives ";
      if (s.function.name() == "Mul") {
        const auto& other = s.inputs[1 - i];
        std::cout << zg::number_str(upstream) << " x " << other.name() << " (" << zg::number_str(other.item()) << ") = ";
      } else {
        std::cout << "the upstream gradient unchanged = ";
      }
      std::cout << zg::number_str(s.input_grads[i].item()) << "\n";
    }
    pause();
  }
};

Variable64 leaf(double value, const std::string& name) {
  Variable64 v(value, name);
  v.requires_grad_();
  return v;
}

void gradient_table(const std::vector<Variable64>& leaves) {
  std::cout << "\n  " << std::left << std::setw(12) << "variable" << std::setw(10) << "value"
            << "d price / d variable\n";
  for (const auto& v : leaves)
    std::cout << "  " << std::setw(12) << v.name() << std::setw(10) << zg::number_str(v.item()) << zg::number_str(v.grad().item())
              << "\n";
  std::cout << std::right;
}

// The recorder, when there is one, keeps every step for the HTML page.
void run_backward(const Variable64& price, Narrator& n, zg::GraphRecorder<double>* recorder) {
  std::cout << "\nBackward: start from d price / d price = 1 and walk the nodes in reverse\n";
  n.count = 0;
  Variable64::BackwardOptions options;
  options.retain_grad = true;   // keep intermediate gradients for the picture
  options.retain_graph = true;  // keep the graph to draw it
  options.observer = [&n](const zg::BackwardStep<double>& s) { n.backward(s); };
  if (recorder) recorder->backward(price, options);
  else price.backward(options);
}

void write_page(const zg::GraphRecorder<double>* recorder, const std::filesystem::path& dir, const std::string& stem,
                const std::string& title) {
  if (!recorder) return;
  zg::HtmlOptions o;
  o.title = title;
  const auto path = (dir / (stem + ".html")).string();
  zg::write_text_file(path, recorder->html(o));
  std::cout << "Step-by-step page written to " << path << " (open it in a browser)\n";
}

void draw(const Variable64& price, const std::filesystem::path& dir, const std::string& stem) {
  zg::DotOptions o;
  o.show_values = true;
  o.show_grads = true;
  const auto dot = (dir / (stem + ".dot")).string();
  const auto png = (dir / (stem + ".png")).string();
  zg::write_text_file(dot, zg::to_dot(price, o));
  std::cout << "\nGraph written to " << dot;
  if (zg::render_dot_to_png(dot, png)) std::cout << " and " << png << " (values and gradients on the nodes)";
  else std::cout << " (install graphviz to get a PNG: apt-get install graphviz)";
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "The apple-shopping graph of Deep Learning from Scratch (chapter 5), computed by zerograd's\n"
      "add and multiply nodes. Prints each node as values flow forward, then each node as\n"
      "gradients flow back (multiply: upstream x the other input; add: passed through), the\n"
      "gradient table, and writes the graph as Graphviz DOT (and PNG when `dot` is installed);\n"
      "with --html also a page per graph that plays it step by step in a browser."};
  bool step = false, html = false;
  std::string out_dir = "out";
  app.add_flag("--step", step, "Pause for Enter after each node");
  app.add_flag("--html", html,
               "Also write apple.html and apple_orange.html: pages that play each graph forward and backward, "
               "step by step, in a browser (needs Graphviz's dot)");
  app.add_option("--out", out_dir, "Directory for apple*.dot / .png / .html")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    Narrator n{step};

    std::cout << "=== Graph 1: 2 apples at 100 each, consumption tax 1.1 ===\n\nForward\n";
    std::optional<zg::GraphRecorder<double>> recorder;
    if (html) recorder.emplace();
    auto apple = leaf(100, "apple"), apple_num = leaf(2, "apple_num"), tax = leaf(1.1, "tax");
    auto apple_price = n.forward(apple * apple_num, "apple_price");
    auto price = n.forward(apple_price * tax, "price");
    run_backward(price, n, recorder ? &*recorder : nullptr);
    gradient_table({apple, apple_num, tax});
    draw(price, out_dir, "apple");
    write_page(recorder ? &*recorder : nullptr, out_dir, "apple", "Apple shopping: 2 apples, tax 1.1 (chapter 5)");
    recorder.reset();

    std::cout << "\n=== Graph 2: 2 apples at 100 and 3 oranges at 150, tax 1.1 ===\n\nForward\n";
    n.count = 0;
    if (html) recorder.emplace();
    auto apple2 = leaf(100, "apple"), apple_num2 = leaf(2, "apple_num");
    auto orange = leaf(150, "orange"), orange_num = leaf(3, "orange_num"), tax2 = leaf(1.1, "tax");
    auto apple_price2 = n.forward(apple2 * apple_num2, "apple_price");
    auto orange_price = n.forward(orange * orange_num, "orange_price");
    auto all_price = n.forward(apple_price2 + orange_price, "all_price");
    auto price2 = n.forward(all_price * tax2, "price");
    run_backward(price2, n, recorder ? &*recorder : nullptr);
    gradient_table({apple2, apple_num2, orange, orange_num, tax2});
    draw(price2, out_dir, "apple_orange");
    write_page(recorder ? &*recorder : nullptr, out_dir, "apple_orange",
               "Apples and oranges: 2 apples, 3 oranges, tax 1.1 (chapter 5)");
  } catch (const std::exception& e) {
    std::cerr << "apple_shopping: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
