#pragma once
// How the Nodes of a forward's outputs are allocated (output_nodes.cpp).
namespace zg::detail {

// While alive, outputs made in this thread are allocated for a Function that
// is (or is not) recorded in the graph: Note [Output nodes].
class OutputKindGuard {
 public:
  explicit OutputKindGuard(bool recorded);
  ~OutputKindGuard();
  OutputKindGuard(const OutputKindGuard&) = delete;
  OutputKindGuard& operator=(const OutputKindGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace zg::detail
