// Fuzz target: a GET /v1/topology response body from central (or whoever answers in its place),
// handled against a current snapshot as sync does: parse, validate, apply a delta to a copy.
#include <cstdint>
#include <string_view>

#include "agent/sync/sync_client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace elasticdns;
  static const auto current = [] {
    model::Topology t;
    t.index = 5;
    t.versions["v1"] = 1;
    model::Container c;
    c.id = "c1";
    c.service = "api";
    c.version = "v1";
    c.server = "host1";
    c.address = "10.0.0.1";
    t.containers[c.id] = c;
    t.recomputeDerived();
    return std::make_shared<const model::Topology>(t);
  }();
  auto step = agent::applyTopologyResponse(
      current, std::string_view(reinterpret_cast<const char*>(data), size));
  if (step.outcome == agent::SyncOutcome::kPublished && !step.topology) __builtin_trap();
  if (current->index != 5 || current->containers.size() != 1) __builtin_trap();  // untouched
  return 0;
}
