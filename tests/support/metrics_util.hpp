#pragma once
// Reads one series of a metrics::Registry's Prometheus text, for tests.
#include <sstream>
#include <string>

#include "elasticdns/metrics.hpp"

namespace elasticdns::testing {

/// The value of `series` (name plus label set, e.g. `x_total{reason="timeout"}`), or -1 when the
/// registry does not render it.
inline double metric(const metrics::Registry& r, const std::string& series) {
  std::istringstream in(r.render());
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

}  // namespace elasticdns::testing
