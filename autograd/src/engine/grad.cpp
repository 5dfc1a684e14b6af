// zg::grad: the gradients of chosen outputs with respect to chosen inputs,
// on the engine that runs backward (engine.cpp, held_grads.hpp).
#include <xtensor/xbuilder.hpp>

#include "zerograd/grad.hpp"

#include "engine/run_engine.hpp"

namespace zg {

// Shared with backward() (engine.cpp): root's seed gradient (ones, or seed
// after checking its shape), and the check that a Variable requires grad.
template <class T>
BasicVariable<T> detail::seed_for(const BasicVariable<T>& root, const BasicVariable<T>& seed, const char* op) {
  if (!seed.defined()) return BasicVariable<T>(Tensor<T>(xt::ones<T>(root.data().shape())));
  if (seed.shape() != root.shape())
    throw ShapeError(std::string(op) + ": seed gradient has shape " + shape_str(seed.shape()) +
                     " but the output has shape " + shape_str(root.shape()));
  return seed;
}

template <class T>
void detail::check_requires_grad(const BasicVariable<T>& v, const std::string& what) {
  if (!v.defined()) throw Error(what + " is an empty Variable");
  if (!v.requires_grad())
    throw Error(what + " '" + v.name() + "' " + shape_str(v.shape()) +
                " does not require grad (no input had requires_grad, or it was computed under NoGradGuard)");
}

template <class T>
Variables<T> grad(const Variables<T>& outputs, const Variables<T>& inputs, const Variables<T>& grad_outputs,
                  const GradOptions& options) {
  if (outputs.empty()) throw ValueError("grad: no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw ValueError("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " +
                     std::to_string(outputs.size()) + " outputs");
  Variables<T> seeds;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    detail::check_requires_grad(outputs[i], "grad: output " + std::to_string(i));
    seeds.push_back(detail::seed_for(outputs[i], grad_outputs.empty() ? BasicVariable<T>() : grad_outputs[i], "grad"));
  }
  for (std::size_t j = 0; j < inputs.size(); ++j) detail::check_requires_grad(inputs[j], "grad: input " + std::to_string(j));
  BackwardOptions<T> bo;
  bo.create_graph = options.create_graph;
  bo.retain_graph = options.retain_graph.value_or(options.create_graph);
  Variables<T> results(inputs.size());
  detail::run_engine<T>(outputs, seeds, bo, &inputs, &results);
  for (std::size_t j = 0; j < inputs.size() && !options.allow_unused; ++j)
    if (!results[j].defined())
      throw Error("grad: input " + std::to_string(j) + " '" + inputs[j].name() + "' " + shape_str(inputs[j].shape()) +
                  " is not used to compute the outputs (allow_unused = true gives an empty Variable for it)");
  return results;
}

template BasicVariable<float> detail::seed_for(const BasicVariable<float>&, const BasicVariable<float>&, const char*);
template BasicVariable<double> detail::seed_for(const BasicVariable<double>&, const BasicVariable<double>&,
                                                const char*);
template void detail::check_requires_grad(const BasicVariable<float>&, const std::string&);
template void detail::check_requires_grad(const BasicVariable<double>&, const std::string&);
template Variables<float> grad<float>(const Variables<float>&, const Variables<float>&, const Variables<float>&,
                                      const GradOptions&);
template Variables<double> grad<double>(const Variables<double>&, const Variables<double>&, const Variables<double>&,
                                        const GradOptions&);

}  // namespace zg
