#pragma once
// Small valid topologies for the agent's sync tests: containers c1..cN of service "api",
// version "v1", on host1, at 10.0.0.N.
#include <string>

#include "elasticdns/model.hpp"

namespace elasticdns::testing {

inline model::Container sampleContainer(int i) {
  model::Container c;
  c.id = "c" + std::to_string(i);
  c.service = "api";
  c.version = "v1";
  c.server = "host1";
  c.address = "10.0.0." + std::to_string(i);
  return c;
}

inline model::Topology sampleTopology(uint64_t index, int containers) {
  model::Topology t;
  t.index = index;
  t.versions["v1"] = 1;
  for (int i = 1; i <= containers; ++i) t.containers[sampleContainer(i).id] = sampleContainer(i);
  t.recomputeDerived();
  return t;
}

}  // namespace elasticdns::testing
