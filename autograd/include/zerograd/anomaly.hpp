#pragma once
/// @file
/// Anomaly mode (thread-local), for finding where a NaN or Inf comes from.
#include "zerograd/variable.hpp"

namespace zg {

bool is_anomaly_enabled();  ///< whether anomaly checks run in this thread
void set_anomaly_enabled(bool enabled);  ///< for this thread; AnomalyModeGuard sets it for a scope
/// While alive, a NaN or Inf produced by any forward or backward throws a
/// ValueError naming the Function, the pass and the first bad element.
using AnomalyModeGuard = detail::ModeGuard<is_anomaly_enabled, set_anomaly_enabled, true>;

}  // namespace zg
