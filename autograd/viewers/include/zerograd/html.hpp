#pragma once
/// @file
/// A graph's forward and backward passes as one self-contained HTML page that
/// plays them step by step in a browser (next to to_dot's static picture).
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "zerograd/variable.hpp"

namespace zg {

/// What to_html and GraphRecorder::html write.
struct HtmlOptions {
  std::string title = "zerograd graph";  ///< the page's title
  std::string rankdir = "LR";  ///< "LR" left to right, "TB" top to bottom
  /// Backward rules in words by Function::name(), for every input; they take
  /// precedence over what each Function's rule() says (a Function that says
  /// nothing gets a generic sentence naming it).
  std::map<std::string, std::string> rules;
};

namespace detail {
template <class T>
struct RecorderState;  // html.cpp
}

/// While alive, records every Function this thread adds to a graph as a
/// forward step (values as they were then); backward() then records each
/// Function the engine runs as a backward step. It holds no Variable, so
/// what the engine frees (Note [Saved inputs]) is freed as usual and shows
/// on the page as freed. Arrays with more than max_elements elements are
/// shown by shape and a summary. Like ForwardObserverGuard, recorders
/// nest only last-in first-out.
template <class T>
class GraphRecorder {
 public:
  explicit GraphRecorder(std::size_t max_elements = 16);  ///< starts recording forward steps in this thread
  ~GraphRecorder();
  GraphRecorder(const GraphRecorder&) = delete;
  GraphRecorder& operator=(const GraphRecorder&) = delete;

  /// Ends the forward recording (the ops backward runs are not forward
  /// steps) and runs y.backward(options), recording each step; an observer
  /// in options still sees every step.
  void backward(const BasicVariable<T>& y, BackwardOptions<T> options = {});
  std::size_t num_forward_steps() const;  ///< Functions recorded going forward
  std::size_t num_backward_steps() const;  ///< Functions recorded by backward()
  /// The page; throws Error when Graphviz's dot is missing or fails.
  std::string html(const HtmlOptions& options = {}) const;

 private:
  std::unique_ptr<detail::RecorderState<T>> state_;
};

/// The recorded passes as a page (recorder.html(options)).
template <class T>
std::string to_html(const GraphRecorder<T>& recorder, const HtmlOptions& options = {});

/// The graph that made y as a page, its forward replayed from the graph in
/// the order the engine would have run it, with the values and the grads
/// its Variables hold now; no backward steps (record those with a
/// GraphRecorder).
template <class T>
std::string to_html(const BasicVariable<T>& y, const HtmlOptions& options = {});

}  // namespace zg
