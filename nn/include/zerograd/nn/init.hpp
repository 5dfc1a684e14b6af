#pragma once
/// @file
/// Weight initialisation, in place, from zg::generator().
///
/// fan_in follows the book's layouts: a Linear weight is (in, out), so
/// fan_in = in; a Conv2d weight is (FN, C, KH, KW), so fan_in = C * KH * KW.
#include "zerograd/variable.hpp"

/// @namespace zg::nn::init
/// Weight initialisation in place, drawing from zg::generator().
namespace zg::nn::init {

std::size_t fan_in(const Shape& weight_shape);  ///< inputs per output unit, in the layouts above

// For float and double weights.
template <class T> void normal(BasicVariable<T>& w, double std);  ///< the book's std 0.01
template <class T> void uniform(BasicVariable<T>& w, double low, double high);  ///< uniform in [low, high)
template <class T> void xavier_normal(BasicVariable<T>& w);    ///< std sqrt(1 / fan_in) (the book's Xavier)
template <class T> void xavier_uniform(BasicVariable<T>& w);   ///< same variance: bound sqrt(3 / fan_in)
template <class T> void he_normal(BasicVariable<T>& w);        ///< std sqrt(2 / fan_in)
template <class T> void he_uniform(BasicVariable<T>& w);       ///< same variance: bound sqrt(6 / fan_in)
template <class T> void zeros(BasicVariable<T>& w);  ///< all 0
template <class T> void constant(BasicVariable<T>& w, double value);  ///< all value

/// The weight inits a layer can be given: normal with a fixed std, Xavier, He.
enum class Scheme { Normal, Xavier, He };
/// The std each scheme gives a weight of this shape ("std:0.01" style names
/// are parsed by layers that take an init name).
double init_std(Scheme scheme, const Shape& weight_shape, double normal_std = 0.01);

}  // namespace zg::nn::init
