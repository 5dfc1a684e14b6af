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

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace zg {
namespace {

template <class T>
std::string values_str(const Tensor<T>& t) {
  std::ostringstream out;
  out.precision(6);
  const auto value = [](T v) { return v == 0 ? T(0) : v; };  // -0 prints as 0
  if (t.dimension() == 0) {
    out << value(t());
    return out.str();
  }
  out << '[';
  for (std::size_t i = 0; i < t.size(); ++i) out << (i ? ", " : "") << value(t.data()[i]);
  out << ']';
  return out.str();
}

// Lines: "name = value" (0-d) or "name", shape, values, grad; escaped
// one by one and joined with DOT's \n.
template <class T>
std::string variable_label(const BasicVariable<T>& v, const DotOptions& o) {
  const bool small = v.size() <= o.max_elements;
  const bool scalar = v.ndim() == 0;
  std::vector<std::string> lines;
  std::string first = v.name();
  if (o.show_values && small && scalar) first += (first.empty() ? "" : " = ") + values_str(v.data());
  if (!first.empty()) lines.push_back(first);
  if (!scalar) lines.push_back(shape_str(v.shape()));
  if (o.show_values && small && !scalar) lines.push_back(values_str(v.data()));
  if (o.show_grads && v.grad().defined() && small) lines.push_back("grad " + values_str(v.grad().data()));
  std::string label;
  for (std::size_t i = 0; i < lines.size(); ++i) label += (i ? "\\n" : "") + dot_escape(lines[i]);
  return label;
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
  std::size_t freed_count = 0;
  if (y.creator()) todo.push_back(y.creator());
  while (!todo.empty()) {
    auto f = todo.back();
    todo.pop_back();
    if (!seen.insert(f.get()).second) continue;
    std::string label = dot_escape(f->name());
    if (!f->attributes().empty()) label += "\\n" + dot_escape(f->attributes());
    out << "  " << id(f.get()) << " [shape=box, style=\"rounded,filled\", fillcolor=\"#e8e8e8\", label=\""
        << label << "\"];\n";
    for (std::size_t k = 0; k < f->num_outputs(); ++k) {
      BasicVariable<T> o = f->output(k);
      if (!o.defined()) continue;
      draw_variable(o);
      out << "  " << id(f.get()) << " -> " << id(o.id()) << ";\n";
    }
    const Variables<T> inputs = f->inputs();
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const BasicVariable<T>& x = inputs[i];
      const std::shared_ptr<Function<T>>& creator = f->input_creator(i);
      if (creator) todo.push_back(creator);
      if (x.defined()) {
        draw_variable(x);
        out << "  " << id(x.id()) << " -> " << id(f.get()) << ";\n";
        continue;
      }
      // An intermediate nobody holds was freed (its consumer saves no
      // inputs): a small dot stands for it, with its shape.
      const std::string freed = "freed" + std::to_string(freed_count++);
      const Shape shape = f->input_shape(i);
      out << "  " << freed << " [shape=ellipse, style=dashed, fontsize=9, label=\""
          << (shape.empty() ? std::string() : dot_escape(shape_str(shape)) + "\\n") << "freed\"];\n";
      if (creator) out << "  " << id(creator.get()) << " -> " << freed << ";\n";
      out << "  " << freed << " -> " << id(f.get()) << ";\n";
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

bool run_quietly(std::vector<std::string> args) {
  if (args.empty()) return false;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;  // not installed
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

bool render_dot_to_png(const std::string& dot_path, const std::string& png_path) {
  return run_quietly({"dot", "-Tpng", dot_path, "-o", png_path});
}

}  // namespace zg
