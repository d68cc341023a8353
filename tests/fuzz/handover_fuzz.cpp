// Fuzz target for the handover messages (agent/ops/handover.hpp): parse() must never read out of
// bounds, and a message it accepts must encode back to the bytes it consumed. Replayed by
// ctest on its corpus with mutations; a libFuzzer binary with clang and -DELASTICDNS_FUZZ=ON.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "agent/ops/handover.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace elasticdns::agent::handover;
  std::span<const uint8_t> in(data, size);
  auto parsed = parse(in);
  if (!parsed || !parsed->message) return 0;
  if (parsed->consumed > size) std::abort();
  auto again = encode(*parsed->message);
  if (again.size() != parsed->consumed) std::abort();
  for (size_t i = 0; i < again.size(); ++i)
    if (again[i] != data[i]) std::abort();
  return 0;
}
