#pragma once
// The Functions a backward has reached and not yet run (engine.cpp).
//
// Note [Pending table]: a Function waiting for its backward has a row: the
// upstream gradient of each output and, when the engine wants them, the
// outputs. The row number is kept in the Function itself (pending_row_, with
// pending_in_ naming the table), so finding it costs no hashing and no
// allocation; rows are reused, so the table stays as small as the number of
// Functions pending at once. A Function already pending in another table (a
// backward run from inside a backward) is found through a hash map instead.
// A thread keeps the emptied containers of its finished tables for the next
// backward: on a small graph, allocating them was a good part of the time.
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

  PendingTable() {
    std::vector<Buffers>& spare = spares();
    if (!spare.empty()) {
      b_ = std::move(spare.back());
      spare.pop_back();
    }
  }
  PendingTable(const PendingTable&) = delete;
  PendingTable& operator=(const PendingTable&) = delete;
  ~PendingTable() {  // after an exception rows may still be pending
    for (Row& r : b_.rows)
      if (r.function && r.function->pending_in_ == this) {
        r.function->pending_in_ = nullptr;
        r.function->pending_row_ = 0;
      }
    constexpr std::size_t kKeepRows = 256;  // a wide graph's big containers are not kept
    b_.rows.clear();
    b_.free.clear();
    b_.heap.clear();
    b_.scratch.clear();
    std::vector<Buffers>& spare = spares();
    if (b_.rows.capacity() <= kKeepRows && spare.size() < 4) spare.push_back(std::move(b_));
  }

  bool empty() const { return b_.heap.empty(); }
  Variables<T>& scratch() { return b_.scratch; }  // a list the engine reuses for each Function

  // creator's row, made and queued on first use. A new row takes creator
  // over when it is an rvalue: a copy would cost two atomic updates.
  template <class Creator>
  Row& row_of(Creator&& creator) {
    Function<T>& f = *creator;
    if (f.pending_in_ == this) return b_.rows[f.pending_row_ - 1];
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
      if (!fresh) return b_.rows[it->second];
      r = it->second = new_row();
    }
    Row& row = b_.rows[r];
    row.function = std::forward<Creator>(creator);
    row.outs.resize(f.num_outputs_ - 1);
    row.grads.resize(f.num_outputs_ - 1);
    row.order = inserted_++;
    b_.heap.push_back({{f.generation_, row.order}, r});
    std::push_heap(b_.heap.begin(), b_.heap.end());
    return row;
  }

  // The row of the Function to run next (Note [Order]), taken out of the table.
  Row pop() {
    std::pop_heap(b_.heap.begin(), b_.heap.end());
    const std::uint32_t r = b_.heap.back().second;
    b_.heap.pop_back();
    Row row = std::move(b_.rows[r]);
    b_.rows[r] = Row();
    b_.free.push_back(r);
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
  struct Buffers {
    std::vector<Row> rows;
    std::vector<std::uint32_t> free;
    std::vector<Key> heap;  // a max-heap
    Variables<T> scratch;
  };
  static std::vector<Buffers>& spares() {  // per thread; a stack, as backwards nest
    thread_local std::vector<Buffers> s;
    return s;
  }
  std::uint32_t new_row() {
    if (!b_.free.empty()) {
      const std::uint32_t r = b_.free.back();
      b_.free.pop_back();
      return r;
    }
    b_.rows.emplace_back();
    return static_cast<std::uint32_t>(b_.rows.size() - 1);
  }

  Buffers b_;
  std::unordered_map<const Function<T>*, std::uint32_t> foreign_;  // pending in another table
  std::uint64_t inserted_ = 0;
};

}  // namespace zg
