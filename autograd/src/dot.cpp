// Graphviz export, walking the graph iteratively from the output.
#include "zerograd/dot.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace zg {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

template <class T>
std::string values_str(const Tensor<T>& t) {
  std::ostringstream out;
  out.precision(6);
  if (t.dimension() == 0) {
    out << t();
    return out.str();
  }
  out << '[';
  for (std::size_t i = 0; i < t.size(); ++i) out << (i ? ", " : "") << t.data()[i];
  out << ']';
  return out.str();
}

template <class T>
std::string variable_label(const BasicVariable<T>& v, const DotOptions& o) {
  std::string label = v.name().empty() ? "" : v.name() + "\\n";
  const bool small = v.size() <= o.max_elements;
  if (!(small && v.ndim() == 0)) label += shape_str(v.shape());
  if (o.show_values && small) label += (label.empty() || label.back() == 'n' ? "" : " ") + std::string("= ") + values_str(v.data());
  if (o.show_grads && v.grad().defined() && small) label += "\\ngrad " + values_str(v.grad().data());
  return escape(label);
}

}  // namespace

template <class T>
std::string to_dot(const BasicVariable<T>& y, const DotOptions& options) {
  std::ostringstream out;
  out << "digraph zerograd {\n  rankdir=" << options.rankdir << ";\n"
      << "  node [fontname=\"Helvetica\", fontsize=11];\n";
  std::unordered_map<const void*, std::size_t> ids;
  auto id = [&ids](const void* p) {
    auto [it, fresh] = ids.try_emplace(p, ids.size());
    return "n" + std::to_string(it->second);
  };
  std::unordered_set<const void*> drawn;
  auto draw_variable = [&](const BasicVariable<T>& v) {
    if (!drawn.insert(v.id()).second) return;
    const bool leaf = !v.creator();
    out << "  " << id(v.id()) << " [shape=ellipse, style=filled, fillcolor=\""
        << (leaf ? "#ffe8b0" : "#d8ecff") << "\", label=\"" << variable_label(v, options) << "\"];\n";
  };
  draw_variable(y);
  std::vector<std::shared_ptr<Function<T>>> todo;
  std::unordered_set<const Function<T>*> seen;
  if (y.creator()) todo.push_back(y.creator());
  while (!todo.empty()) {
    auto f = todo.back();
    todo.pop_back();
    if (!seen.insert(f.get()).second) continue;
    std::string label = f->name();
    if (!f->attributes().empty()) label += "\\n" + f->attributes();
    out << "  " << id(f.get()) << " [shape=box, style=\"rounded,filled\", fillcolor=\"#e8e8e8\", label=\""
        << escape(label) << "\"];\n";
    for (std::size_t k = 0; k < f->num_outputs(); ++k) {
      BasicVariable<T> o = f->output(k);
      if (!o.defined()) continue;
      draw_variable(o);
      out << "  " << id(f.get()) << " -> " << id(o.id()) << ";\n";
    }
    for (const auto& x : f->inputs()) {
      draw_variable(x);
      out << "  " << id(x.id()) << " -> " << id(f.get()) << ";\n";
      if (x.creator()) todo.push_back(x.creator());
    }
  }
  out << "}\n";
  return out.str();
}

template std::string to_dot(const BasicVariable<float>&, const DotOptions&);
template std::string to_dot(const BasicVariable<double>&, const DotOptions&);

void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw IOError("write_text_file: cannot open '" + tmp + "': " + std::strerror(errno));
    file << text;
    file.flush();
    if (!file) {
      std::remove(tmp.c_str());
      throw IOError("write_text_file: writing '" + tmp + "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IOError("write_text_file: cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
}

bool render_dot_to_png(const std::string& dot_path, const std::string& png_path) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0) return false;
  const std::string cmd = "dot -Tpng '" + dot_path + "' -o '" + png_path + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace zg
