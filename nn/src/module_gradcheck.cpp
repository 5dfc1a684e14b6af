#include "zerograd/nn/gradcheck.hpp"

#include "zerograd/random.hpp"

namespace zg::nn {

GradcheckReport gradcheck(Module64& module, const Variable64& input, const ModuleGradcheckOptions& options) {
  const auto params = module.named_parameters();
  std::vector<Variable64> leaves;
  std::vector<std::string> names;
  Variable64 x(input.data());
  if (options.check_input) {
    x.requires_grad_();
    leaves.push_back(x);
    names.push_back("input");
  }
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    leaves.push_back(p);
    names.push_back(name);
  }
  if (leaves.empty())
    throw ValueError("nn::gradcheck(" + module.type_name() +
                     "): nothing to check (no parameter requires a gradient and check_input is off)");
  // Each pass starts from the same generator state (the same Dropout mask);
  // running statistics change in train mode and are put back at the end.
  const Generator start = generator();
  std::vector<Tensor<double>> buffers;
  for (const auto& [name, b] : module.named_buffers()) buffers.push_back(b.data());
  auto restore = [&] {
    generator() = start;
    std::size_t i = 0;
    for (auto& [name, b] : module.named_buffers()) b.data() = buffers[i++];
  };
  GradcheckReport report;
  try {
    report = gradcheck_leaves(
        [&] {
          generator() = start;
          return std::vector<Variable64>{module(x)};
        },
        leaves, options);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  report.worst_name = names[report.worst_input];
  return report;
}

GradcheckReport gradcheck(const Module& module, const Variable& input, const ModuleGradcheckOptions& options) {
  auto module64 = module.to<double>();
  return gradcheck(*module64, input.to<double>(), options);
}

}  // namespace zg::nn
