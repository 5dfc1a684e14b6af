// The graph player page: a recording of forward and backward steps (values
// turned into text as they happen), the graph laid out by Graphviz's dot,
// and both inlined with the player's script into one HTML file.
#include "zerograd/html.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include <unistd.h>

#include "zerograd/dot.hpp"
#include "zerograd/observer.hpp"

#include "html_player.hpp"

namespace zg {
namespace detail {

struct VarRecord {
  std::string name, shape, value, grad;  // grad: the last one the engine produced
  bool leaf = false, constant = false, freed = false;
};
struct FnRecord {
  std::string name, attributes;
  std::vector<std::size_t> inputs, outputs;  // var ids
  std::vector<std::string> rules;  // Function::rule for each input, empty where it has none
};
struct InputRecord {
  std::string grad, arithmetic;  // arithmetic: "1.1 x apple_num (2)" for scalar Mul and Add
  bool skip = false, freed = false;  // skip: the input needs no gradient
};
struct StepRecord {
  bool backward = false;
  std::size_t fn = 0;
  std::vector<std::optional<std::string>> upstream;  // backward: one per output
  std::vector<InputRecord> inputs;
  std::vector<std::pair<std::size_t, std::string>> leaf_grads;  // a leaf's .grad after this step
};
// What a page shows, with no type left: every number is already text.
struct Recording {
  std::vector<VarRecord> vars;
  std::vector<FnRecord> fns;
  std::vector<StepRecord> steps;
};

}  // namespace detail

namespace {


// Nested brackets along the shape, from dimension d on, starting at data.
template <class T>
void nested(std::ostringstream& out, const T* data, const Shape& shape, std::size_t d) {
  std::size_t stride = 1;
  for (std::size_t k = d + 1; k < shape.size(); ++k) stride *= shape[k];
  out << '[';
  for (std::size_t i = 0; i < shape[d]; ++i) {
    if (i) out << ", ";
    if (d + 1 == shape.size()) out << number_str(double(data[i]));
    else nested(out, data + i * stride, shape, d + 1);
  }
  out << ']';
}

// "2.2", "[[1, 2], [3, 4]]", or for a big array its shape and a summary.
template <class T>
std::string tensor_text(const Tensor<T>& t, std::size_t max_elements) {
  const Shape shape(t.shape().begin(), t.shape().end());
  if (t.size() == 0) return "(empty " + shape_str(shape) + ")";
  if (t.dimension() == 0) return number_str(double(t()));
  std::ostringstream out;
  if (t.size() <= max_elements) {
    nested(out, t.data(), shape, 0);
    return out.str();
  }
  double sum = 0, lo = double(t.data()[0]), hi = lo;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double v = double(t.data()[i]);
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  out << shape_str(shape) << " mean " << number_str(sum / double(t.size())) << ", min " << number_str(lo) << ", max "
      << number_str(hi);
  return out.str();
}

}  // namespace


namespace detail {

template <class T>
struct RecorderState {
  std::size_t max_elements = 16;
  Recording rec;
  std::unordered_map<const Node<T>*, std::size_t> var_ids;
  std::vector<std::weak_ptr<Node<T>>> nodes;  // by var id: tells a live node from a new one at the same address
  std::map<std::pair<const Function<T>*, std::size_t>, std::size_t> output_ids;  // (creator, output) -> var id
  std::unordered_map<const Function<T>*, std::size_t> fn_ids;
  // Leaves sent a gradient by the last step: the engine adds it to their
  // .grad after the observer returns, so it is read at the next step.
  std::vector<std::pair<std::size_t, BasicVariable<T>>> pending_leaves;
  bool forward_on = true;
  std::optional<ForwardObserverGuard<T>> guard;

  std::string text(const Tensor<T>& t) const { return tensor_text(t, max_elements); }

  std::size_t var_id(const BasicVariable<T>& v) {
    const auto it = var_ids.find(v.id());
    if (it != var_ids.end() && nodes[it->second].lock() == v.node()) {
      if (!v.name().empty()) rec.vars[it->second].name = v.name();  // often named after the op ran
      return it->second;
    }
    const std::size_t id = rec.vars.size();
    var_ids[v.id()] = id;
    nodes.push_back(v.node());
    VarRecord r;
    r.name = v.name();
    r.shape = shape_str(v.shape());
    r.value = text(v.data());
    r.leaf = !v.creator();
    r.constant = !v.requires_grad();
    rec.vars.push_back(std::move(r));
    if (v.creator()) output_ids[{v.creator().get(), v.node()->output_index}] = id;
    return id;
  }

  // A Variable nobody holds any more: the one recorded as creator's
  // output k, or a new record of it.
  std::size_t freed_var(const Function<T>* creator, std::size_t k, const Shape& shape) {
    const auto it = output_ids.find({creator, k});
    std::size_t id = rec.vars.size();
    if (it != output_ids.end()) {
      id = it->second;
    } else {
      VarRecord r;
      r.shape = shape_str(shape);
      r.value = "(freed)";
      rec.vars.push_back(std::move(r));
      nodes.emplace_back();
      if (creator) output_ids[{creator, k}] = id;
    }
    rec.vars[id].freed = true;
    return id;
  }

  // The freed input i of f: its creator's only output, when it has one.
  std::size_t freed_input(const Function<T>& f, std::size_t i) {
    const Function<T>* creator = f.input_creator(i).get();
    if (creator && creator->num_outputs() == 1) return freed_var(creator, 0, f.input_shape(i));
    return freed_var(nullptr, 0, f.input_shape(i));
  }

  std::size_t fn_id(const Function<T>& f, const Variables<T>& inputs, const Variables<T>& outputs) {
    const auto it = fn_ids.find(&f);
    if (it != fn_ids.end()) return it->second;
    FnRecord r{f.name(), f.attributes(), {}, {}, {}};
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      r.inputs.push_back(inputs[i].defined() ? var_id(inputs[i]) : freed_input(f, i));
      r.rules.push_back(f.rule(i));
    }
    for (std::size_t k = 0; k < outputs.size(); ++k)
      r.outputs.push_back(outputs[k].defined() ? var_id(outputs[k]) : freed_var(&f, k, {}));
    const std::size_t id = rec.fns.size();
    fn_ids[&f] = id;
    rec.fns.push_back(std::move(r));
    return id;
  }

  void forward(const Function<T>& f, const Variables<T>& inputs, const Variables<T>& outputs) {
    StepRecord s;
    s.fn = fn_id(f, inputs, outputs);
    rec.steps.push_back(std::move(s));
  }

  void observe_forward(const ForwardStep<T>& step) {
    // Unrecorded ops (no_grad, constants only) are no part of any graph.
    if (!forward_on || step.outputs.empty() || !step.outputs[0].defined() || !step.outputs[0].creator()) return;
    forward(step.function, step.inputs, step.outputs);
  }

  void flush_leaves() {
    for (auto& [id, leaf] : pending_leaves) {
      if (!leaf.grad().defined()) continue;
      const std::string g = text(leaf.grad().data());
      rec.vars[id].grad = g;
      rec.steps.back().leaf_grads.emplace_back(id, g);
    }
    pending_leaves.clear();
  }

  // "1.1 x apple_num (2)" or "1.1 passed on", when every number is a scalar.
  static std::string arithmetic(const BackwardStep<T>& s, std::size_t i) {
    if (s.output_grads.size() != 1 || s.output_grads[0].size() != 1 || s.input_grads[i].size() != 1) return {};
    const std::string up = number_str(double(s.output_grads[0].item()));
    const std::string op = s.function.name();
    if (op == "Add" && s.inputs.size() == 2) return up + " passed on";
    if (op != "Mul" || s.inputs.size() != 2 || !s.inputs[1 - i].defined() || s.inputs[1 - i].size() != 1) return {};
    const BasicVariable<T>& other = s.inputs[1 - i];
    const std::string value = number_str(double(other.item()));
    return up + " \u00d7 " + (other.name().empty() ? value : other.name() + " (" + value + ")");
  }

  void observe_backward(const BackwardStep<T>& s) {
    flush_leaves();
    StepRecord r;
    r.backward = true;
    r.fn = fn_id(s.function, s.inputs, s.outputs);
    const FnRecord& f = rec.fns[r.fn];
    for (std::size_t k = 0; k < s.outputs.size(); ++k) {
      if (s.outputs[k].defined()) var_id(s.outputs[k]);  // refreshes the name
      if (!s.output_grads[k].defined()) {
        r.upstream.emplace_back();
        continue;
      }
      r.upstream.push_back(text(s.output_grads[k].data()));
      rec.vars[f.outputs[k]].grad = *r.upstream.back();
    }
    for (std::size_t i = 0; i < s.inputs.size(); ++i) r.inputs.push_back(input_record(s, i, f.inputs[i]));
    rec.steps.push_back(std::move(r));
  }

  InputRecord input_record(const BackwardStep<T>& s, std::size_t i, std::size_t id) {
    InputRecord x;
    const BasicVariable<T>& v = s.inputs[i];
    x.freed = !v.defined();
    if (x.freed) rec.vars[id].freed = true;
    else if (!v.name().empty()) rec.vars[id].name = v.name();
    x.skip = !s.function.needs_input_grad(i) || !s.input_grads[i].defined();
    if (x.skip) return x;
    x.grad = text(s.input_grads[i].data());
    x.arithmetic = arithmetic(s, i);
    const bool leaf = v.defined() && !v.creator();
    const auto seen = [id](const auto& p) { return p.first == id; };
    if (leaf && std::none_of(pending_leaves.begin(), pending_leaves.end(), seen)) pending_leaves.emplace_back(id, v);
    return x;
  }

  // Names given after the last step, read from the Variables still alive.
  void refresh_names() {
    for (std::size_t id = 0; id < nodes.size(); ++id)
      if (auto node = nodes[id].lock(); node && node->name) rec.vars[id].name = *node->name;
  }
};

}  // namespace detail

namespace {

using detail::FnRecord;
using detail::Recording;

// Name, shape, "= value" and "grad g" lines; the player hides the value and
// rewrites the grad line as the steps go. Long values stay off the graph.
std::string var_label(const detail::VarRecord& v) {
  // A big array's summary starts with its shape and belongs in the panel.
  const auto fits = [](const std::string& text) { return !text.empty() && text.size() <= 40 && text.front() != '('; };
  std::vector<std::string> lines;
  if (!v.name.empty()) lines.push_back(v.name);
  if (v.shape != "()") lines.push_back(v.shape);
  if (v.freed) lines.push_back("freed");
  else if (fits(v.value)) lines.push_back("= " + v.value);
  if (!v.grad.empty() && fits(v.grad)) lines.push_back("grad " + v.grad);
  std::string label;
  for (std::size_t i = 0; i < lines.size(); ++i) label += (i ? "\\n" : "") + dot_escape(lines[i]);
  return label;
}

std::string to_dot_text(const Recording& rec, const HtmlOptions& options) {
  std::ostringstream out;
  out << "digraph zerograd {\n  rankdir=" << options.rankdir << ";\n"
      << "  node [fontname=\"Helvetica\", fontsize=11];\n  edge [color=\"#666666\"];\n";
  for (std::size_t i = 0; i < rec.vars.size(); ++i) {
    const auto& v = rec.vars[i];
    const char* fill = v.leaf ? (v.constant ? "#eeeeee" : "#ffe8b0") : "#d8ecff";
    out << "  v" << i << " [id=\"v" << i << "\", shape=ellipse, style=\"" << (v.freed ? "dashed,filled" : "filled")
        << "\", fillcolor=\"" << fill << "\", label=\"" << var_label(v) << "\"];\n";
  }
  // A rounded box is a 400-byte SVG path, a plain one a 100-byte polygon:
  // big graphs get plain boxes to keep the page small.
  const char* box_style = rec.fns.size() <= 200 ? "rounded,filled" : "filled";
  for (std::size_t i = 0; i < rec.fns.size(); ++i) {
    const auto& f = rec.fns[i];
    std::string label = dot_escape(f.name);
    if (!f.attributes.empty()) label += "\\n" + dot_escape(f.attributes);
    out << "  f" << i << " [id=\"f" << i << "\", shape=box, style=\"" << box_style << "\", fillcolor=\"#e8e8e8\", label=\""
        << label << "\"];\n";
    for (std::size_t j = 0; j < f.inputs.size(); ++j)
      out << "  v" << f.inputs[j] << " -> f" << i << " [id=\"f" << i << "-i" << j << "\"];\n";
    for (std::size_t k = 0; k < f.outputs.size(); ++k)
      out << "  f" << i << " -> v" << f.outputs[k] << " [id=\"f" << i << "-o" << k << "\"];\n";
  }
  out << "}\n";
  return out.str();
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The graph laid out by `dot -Tsvg`, in a private temporary directory.
std::string layout_svg(const std::string& dot_text) {
  if (!on_path("dot"))
    throw Error("to_html: Graphviz's `dot` was not found on PATH; it lays out the graph "
                "(install graphviz: apt-get install graphviz)");
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("zerograd-html-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "graph.dot").string(), out = (dir / "graph.svg").string();
  std::string svg;
  try {
    write_text_file(in, dot_text);
    if (!run_quietly({"dot", "-Tsvg", in, "-o", out}))
      throw Error("to_html: Graphviz's `dot -Tsvg` failed on the graph (" + std::to_string(dot_text.size()) +
                  " bytes of DOT)");
    svg = read_file(out);
  } catch (...) {
    std::filesystem::remove_all(dir);
    throw;
  }
  std::filesystem::remove_all(dir);
  return svg;
}

// Drops every open...close span, in one pass.
void erase_between(std::string& s, const std::string& open, const std::string& close) {
  std::string out;
  out.reserve(s.size());
  std::size_t from = 0;
  for (std::size_t at = s.find(open); at != std::string::npos; at = s.find(open, from)) {
    const std::size_t end = s.find(close, at);
    if (end == std::string::npos) break;
    out.append(s, from, at - from);
    from = end + close.size();
  }
  out.append(s, from, std::string::npos);
  s = std::move(out);
}

// Drops every occurrence of what, in one pass.
void erase_all(std::string& s, const std::string& what) {
  std::string out;
  out.reserve(s.size());
  std::size_t from = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, from)) {
    out.append(s, from, at - from);
    from = at + what.size();
  }
  out.append(s, from, std::string::npos);
  s = std::move(out);
}

// dot's SVG without the XML prologue, comments and tooltips, and without a
// fixed size: the page sizes it and pans and zooms through its viewBox.
std::string inline_svg(std::string svg) {
  const std::size_t start = svg.find("<svg");
  if (start == std::string::npos) throw Error("to_html: dot's output has no <svg> element");
  svg.erase(0, start);
  erase_between(svg, "<!--", "-->");
  erase_between(svg, "<title>", "</title>");
  erase_all(svg, " font-family=\"Helvetica,sans-Serif\" font-size=\"11.00\"");  // the page's style sets them once
  erase_all(svg, "\n\n");
  const std::size_t tag_end = svg.find('>');
  std::string tag = svg.substr(0, tag_end);
  for (const char* attribute : {" width=\"", " height=\""}) {
    const std::size_t at = tag.find(attribute);
    if (at != std::string::npos) tag.erase(at, tag.find('"', at + std::strlen(attribute)) + 1 - at);
  }
  return tag + svg.substr(tag_end);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c < 0x20 || c == '<' || c == '>' || c == '&') {  // nothing can close the <script>
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += char(c);
  }
  return out + '"';
}

std::string json_ids(const std::vector<std::size_t>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

void json_step(std::ostringstream& out, const detail::StepRecord& s) {
  out << "{\"k\":\"" << (s.backward ? 'b' : 'f') << "\",\"f\":" << s.fn;
  if (!s.backward) {
    out << '}';
    return;
  }
  out << ",\"up\":[";
  for (std::size_t k = 0; k < s.upstream.size(); ++k) out << (k ? "," : "") << (s.upstream[k] ? json_string(*s.upstream[k]) : "null");
  out << "],\"in\":[";
  for (std::size_t i = 0; i < s.inputs.size(); ++i) {
    const auto& x = s.inputs[i];
    out << (i ? "," : "") << "{\"g\":" << json_string(x.grad);
    if (!x.arithmetic.empty()) out << ",\"d\":" << json_string(x.arithmetic);
    if (x.skip) out << ",\"skip\":1";
    if (x.freed) out << ",\"freed\":1";
    out << '}';
  }
  out << ']';
  if (!s.leaf_grads.empty()) {
    out << ",\"lg\":[";
    for (std::size_t i = 0; i < s.leaf_grads.size(); ++i)
      out << (i ? "," : "") << '[' << s.leaf_grads[i].first << ',' << json_string(s.leaf_grads[i].second) << ']';
    out << ']';
  }
  out << '}';
}

// The rule in words for each input of each Function name on the page: the
// user's own from options, else what the Function says (Function::rule),
// else a generic sentence naming it.
std::string json_rules(const Recording& rec, const HtmlOptions& options) {
  std::map<std::string, const FnRecord*> widest;  // per name, the record with the most inputs
  for (const auto& f : rec.fns) {
    const FnRecord*& w = widest[f.name];
    if (!w || f.inputs.size() > w->inputs.size()) w = &f;
  }
  std::ostringstream out;
  out << '{';
  bool first = true;
  for (const auto& [name, f] : widest) {
    out << (first ? "" : ",") << json_string(name) << ":[";
    first = false;
    const auto own = options.rules.find(name);
    for (std::size_t i = 0; i < f->inputs.size(); ++i) {
      std::string rule = own != options.rules.end() ? own->second : f->rules[i];
      if (rule.empty()) rule = "what " + name + "'s own backward computes from the upstream gradient";
      out << (i ? "," : "") << json_string(rule);
    }
    out << ']';
  }
  out << '}';
  return out.str();
}

std::string json_data(const Recording& rec, const HtmlOptions& options) {
  std::ostringstream out;
  out << "{\"vars\":[";
  for (std::size_t i = 0; i < rec.vars.size(); ++i) {
    const auto& v = rec.vars[i];
    out << (i ? ",\n" : "") << "{\"n\":" << json_string(v.name) << ",\"s\":" << json_string(v.shape)
        << ",\"v\":" << json_string(v.value) << ",\"g\":" << (v.grad.empty() ? "null" : json_string(v.grad));
    if (v.leaf) out << ",\"leaf\":1";
    if (v.constant) out << ",\"c\":1";
    if (v.freed) out << ",\"freed\":1";
    out << '}';
  }
  out << "],\n\"fns\":[";
  for (std::size_t i = 0; i < rec.fns.size(); ++i) {
    const auto& f = rec.fns[i];
    out << (i ? ",\n" : "") << "{\"n\":" << json_string(f.name) << ",\"a\":" << json_string(f.attributes)
        << ",\"i\":" << json_ids(f.inputs) << ",\"o\":" << json_ids(f.outputs) << '}';
  }
  out << "],\n\"steps\":[";
  for (std::size_t i = 0; i < rec.steps.size(); ++i) {
    if (i) out << ",\n";
    json_step(out, rec.steps[i]);
  }
  out << "],\n\"rules\":" << json_rules(rec, options)
      << ",\n\"generic\":" << json_string("this Function's own backward rule") << "}";
  return out.str();
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

const char* const kControls = R"HTML(<div id="zg-controls">
<button id="zg-first" title="First step (Home)">First</button>
<button id="zg-prev" title="Previous step (&#x2190;)">&#x25C0; Previous</button>
<button id="zg-play" title="Play / Pause (space)">Play</button>
<button id="zg-next" title="Next step (&#x2192;)">Next &#x25B6;</button>
<button id="zg-last" title="Last step (End)">Last</button>
<label>speed <select id="zg-speed"><option value="0.5">0.5</option><option value="1" selected>1</option>
<option value="2">2</option><option value="5">5</option><option value="20">20</option><option value="60">60</option></select> steps/s</label>
<input type="range" id="zg-slider" min="0" max="0" value="0" aria-label="step">
<button id="zg-fit" title="Fit the whole graph">Fit</button>
<button id="zg-zoom-in" title="Zoom in (+)">+</button><button id="zg-zoom-out" title="Zoom out (-)">&#x2212;</button>
<label><input type="checkbox" id="zg-follow" checked> follow</label>
</div>
)HTML";

const char* const kAside = R"HTML(<aside><section id="zg-step"></section>
<table id="zg-vars"><thead><tr><th>variable</th><th>value</th><th>grad</th></tr></thead><tbody id="zg-vars-body"></tbody></table>
<p class="zg-help">Keys: &#x2190; &#x2192; step, space play / pause, Home / End, + &#x2212; zoom. Drag to pan, wheel to zoom.
Dashed nodes were freed: the Function using them needs only their shape (Note [Saved inputs]).</p></aside>
)HTML";

std::string page(const Recording& rec, const HtmlOptions& options) {
  const std::string svg = inline_svg(layout_svg(to_dot_text(rec, options)));
  const std::string title = escape_html(options.title);
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << title
      << "</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>"
      << detail::html_player_style() << "</style></head>\n<body>\n<header><h1>" << title
      << "</h1><span id=\"zg-counter\"></span></header>\n"
      << kControls << "<main><div id=\"zg-graph\">" << svg << "</div>\n"
      << kAside << "</main>\n<script id=\"zg-data\" type=\"application/json\">" << json_data(rec, options)
      << "</script>\n<script>" << detail::html_player_script() << "</script>\n</body></html>\n";
  return out.str();
}

}  // namespace

template <class T>
GraphRecorder<T>::GraphRecorder(std::size_t max_elements) : state_(std::make_unique<detail::RecorderState<T>>()) {
  state_->max_elements = max_elements;
  detail::RecorderState<T>* state = state_.get();
  state_->guard.emplace([state](const ForwardStep<T>& step) { state->observe_forward(step); });
}

template <class T>
GraphRecorder<T>::~GraphRecorder() = default;

template <class T>
void GraphRecorder<T>::backward(const BasicVariable<T>& y, BackwardOptions<T> options) {
  state_->forward_on = false;
  detail::RecorderState<T>* state = state_.get();
  options.observer = [state, user = std::move(options.observer)](const BackwardStep<T>& s) {
    state->observe_backward(s);
    if (user) user(s);
  };
  y.backward(options);
  state_->flush_leaves();
}

template <class T>
std::size_t GraphRecorder<T>::num_forward_steps() const {
  const auto& steps = state_->rec.steps;
  return std::count_if(steps.begin(), steps.end(), [](const auto& s) { return !s.backward; });
}

template <class T>
std::size_t GraphRecorder<T>::num_backward_steps() const {
  return state_->rec.steps.size() - num_forward_steps();
}

template <class T>
std::string GraphRecorder<T>::html(const HtmlOptions& options) const {
  state_->refresh_names();
  return page(state_->rec, options);
}

template <class T>
std::string to_html(const GraphRecorder<T>& recorder, const HtmlOptions& options) {
  return recorder.html(options);
}

namespace {

// The Functions behind y, in the order the forward ran them: a Function's
// generation exceeds its inputs' creators', and ties keep discovery order.
template <class T>
std::vector<std::shared_ptr<Function<T>>> functions_behind(const BasicVariable<T>& y) {
  std::vector<std::shared_ptr<Function<T>>> found, todo;
  std::unordered_map<const Function<T>*, bool> seen;
  if (y.creator()) todo.push_back(y.creator());
  while (!todo.empty()) {
    auto f = std::move(todo.back());
    todo.pop_back();
    if (!seen.emplace(f.get(), true).second) continue;
    for (std::size_t i = 0; i < f->num_inputs(); ++i)
      if (f->input_creator(i)) todo.push_back(f->input_creator(i));
    found.push_back(std::move(f));
  }
  std::reverse(found.begin(), found.end());
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a->generation() < b->generation(); });
  return found;
}

}  // namespace

template <class T>
std::string to_html(const BasicVariable<T>& y, const HtmlOptions& options) {
  detail::RecorderState<T> state;
  for (const auto& f : functions_behind(y)) {
    Variables<T> outputs;
    for (std::size_t k = 0; k < f->num_outputs(); ++k) outputs.push_back(f->output(k));
    state.forward(*f, f->inputs(), outputs);
  }
  if (state.rec.fns.empty()) state.var_id(y);
  for (std::size_t id = 0; id < state.nodes.size(); ++id)
    if (auto node = state.nodes[id].lock(); node && node->grad.defined())
      state.rec.vars[id].grad = state.text(node->grad.data());
  return page(state.rec, options);
}

template class GraphRecorder<float>;
template class GraphRecorder<double>;
template std::string to_html(const GraphRecorder<float>&, const HtmlOptions&);
template std::string to_html(const GraphRecorder<double>&, const HtmlOptions&);
template std::string to_html(const BasicVariable<float>&, const HtmlOptions&);
template std::string to_html(const BasicVariable<double>&, const HtmlOptions&);

}  // namespace zg
