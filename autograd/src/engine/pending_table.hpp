#pragma once
// The Functions a backward has reached and not yet run (engine.cpp).
//
// Note [Pending table]: a Function waiting for its backward has a row: the
// upstream gradient of each output and, when the engine wants them, the
// outputs. The row number is kept in the Function itself (pending_row_, with
// pending_in_ naming the table), so finding it costs no hashing and no
// allocation; rows are reused, so the table stays as small as the number of
// Functions pending at once. A Function already pending in another table (a
// backward run from inside a backward) is found through a hash map instead:
// using the map for every Function cost 6% more instructions on op_overhead
// (callgrind). Keeping a thread's emptied containers for the next backward
// bought 0.05% on mlp_epoch and was dropped.
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg {

template <class T>
class PendingTable {
 public:
  struct Row {
    std::shared_ptr<Function<T>> function;
    BasicVariable<T> out0, grad0;  // output 0 and its accumulated gradient
    Variables<T> outs, grads;      // outputs 1.. of multi-output Functions (index k - 1)
    std::uint64_t order = 0;
    BasicVariable<T>& out(std::size_t k) { return k == 0 ? out0 : outs[k - 1]; }
    BasicVariable<T>& grad(std::size_t k) { return k == 0 ? grad0 : grads[k - 1]; }
  };

  PendingTable() = default;
  PendingTable(const PendingTable&) = delete;
  PendingTable& operator=(const PendingTable&) = delete;
  ~PendingTable() {  // after an exception rows may still be pending
    for (Row& r : rows_)
      if (r.function && r.function->pending_in_ == this) {
        r.function->pending_in_ = nullptr;
        r.function->pending_row_ = 0;
      }
  }

  bool empty() const { return heap_.empty(); }
  Variables<T>& scratch() { return scratch_; }  // a list the engine reuses for each Function

  // creator's row, made and queued on first use. A new row takes creator
  // over when it is an rvalue: a copy would cost two atomic updates.
  template <class Creator>
  Row& row_of(Creator&& creator) {
    Function<T>& f = *creator;
    if (f.pending_in_ == this) return rows_[f.pending_row_ - 1];
    if (f.released_)  // checked before f is marked: f must not outlive the table marked
      throw Error("backward: " + f.name() +
                  " was already run and freed by an earlier backward; pass retain_graph = "
                  "true to that backward to differentiate through it again");
    std::uint32_t r;
    if (f.pending_in_ == nullptr) {
      r = new_row();
      f.pending_in_ = this;
      f.pending_row_ = r + 1;
    } else {
      auto [it, fresh] = foreign_.try_emplace(&f, 0);
      if (!fresh) return rows_[it->second];
      r = it->second = new_row();
    }
    Row& row = rows_[r];
    row.function = std::forward<Creator>(creator);
    row.outs.resize(f.num_outputs_ - 1);
    row.grads.resize(f.num_outputs_ - 1);
    row.order = inserted_++;
    heap_.push_back({{f.generation_, row.order}, r});
    std::push_heap(heap_.begin(), heap_.end());
    return row;
  }

  // The row of the Function to run next (Note [Order]), taken out of the table.
  Row pop() {
    std::pop_heap(heap_.begin(), heap_.end());
    const std::uint32_t r = heap_.back().second;
    heap_.pop_back();
    Row row = std::move(rows_[r]);
    rows_[r] = Row();
    free_.push_back(r);
    Function<T>& f = *row.function;
    if (f.pending_in_ == this) {
      f.pending_in_ = nullptr;
      f.pending_row_ = 0;
    } else {
      foreign_.erase(&f);
    }
    return row;
  }

 private:
  using Key = std::pair<std::pair<int, std::uint64_t>, std::uint32_t>;  // (generation, order), row
  std::uint32_t new_row() {
    if (!free_.empty()) {
      const std::uint32_t r = free_.back();
      free_.pop_back();
      return r;
    }
    rows_.emplace_back();
    return static_cast<std::uint32_t>(rows_.size() - 1);
  }

  std::vector<Row> rows_;
  std::vector<std::uint32_t> free_;
  std::vector<Key> heap_;  // a max-heap
  Variables<T> scratch_;
  std::unordered_map<const Function<T>*, std::uint32_t> foreign_;  // pending in another table
  std::uint64_t inserted_ = 0;
};

}  // namespace zg
