// Anomaly mode (zerograd/anomaly.hpp); the engine checks with anomaly_check.hpp.
#include "zerograd/anomaly.hpp"

namespace zg {
namespace {
thread_local bool anomaly_enabled = false;
}  // namespace

bool is_anomaly_enabled() { return anomaly_enabled; }
void set_anomaly_enabled(bool enabled) { anomaly_enabled = enabled; }

}  // namespace zg
