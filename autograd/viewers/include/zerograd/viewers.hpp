#pragma once
/// @file
/// The viewers layer in one header: a graph as Graphviz DOT and PNG (to_dot),
/// and as a page that plays its forward and backward passes (GraphRecorder,
/// to_html).
#include "zerograd/dot.hpp"
#include "zerograd/html.hpp"
