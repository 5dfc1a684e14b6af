// Must fail to compile: float and double Variables in one op.
#include <zerograd/zerograd.hpp>

int main() {
  zg::Variable a(1.0f);
  zg::Variable64 b(2.0);
  auto c = a + b;
  (void)c;
}
