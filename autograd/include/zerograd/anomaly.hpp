#pragma once
// Anomaly mode (thread-local), for finding where a NaN or Inf comes from.
#include "zerograd/variable.hpp"

namespace zg {

bool is_anomaly_enabled();
void set_anomaly_enabled(bool enabled);
// While alive, a NaN or Inf produced by any forward or backward throws a
// ValueError naming the Function, the pass and the first bad element.
using AnomalyModeGuard = detail::ModeGuard<is_anomaly_enabled, set_anomaly_enabled, true>;

}  // namespace zg
