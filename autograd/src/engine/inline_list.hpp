#pragma once
// n items on the stack when there are at most four (an op's usual inputs),
// on the heap otherwise: apply makes one list per op. Not copyable: data()
// may point into it.
#include <cstddef>
#include <vector>

namespace zg {

template <class X>
class InlineList {
 public:
  explicit InlineList(std::size_t n) {
    if (n > kInline) {
      more_.resize(n);
      data_ = more_.data();
    }
  }
  InlineList(const InlineList&) = delete;
  InlineList& operator=(const InlineList&) = delete;
  X* data() { return data_; }

 private:
  static constexpr std::size_t kInline = 4;
  X inline_[kInline];
  std::vector<X> more_;
  X* data_ = inline_;
};

}  // namespace zg
