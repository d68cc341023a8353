#pragma once
// The answer policy (agent/README.md, "Answers"), as pure functions: no I/O, no clock, no state.
// agent/dns/zone.cpp applies them to the precomputed tables of a snapshot; central's
// explanations (central/explain.cpp) use them to show what a caller gets.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace elasticdns::policy {

using TimePoint = std::chrono::steady_clock::time_point;

/// Which version of a service a caller gets. `generations` are the generations of the service's
/// versions that have a running container, ascending (precondition: not empty); the last one
/// is the latest. `caller_generation` is the generation of the caller's own version, 0 when
/// the caller is not a known container. Rule (versioned): the caller's own version; else the
/// newest version older than the caller's; else the latest. Non-versioned, or an unknown
/// caller: the latest. Returns an index into `generations`.
size_t chooseVersion(std::span<const uint64_t> generations, uint64_t caller_generation,
                     bool versioned) noexcept;

/// `closest`: given the servers (ids) that run containers of the chosen version, the index of
/// the caller's server, or nullopt when none runs there (then: all of them).
std::optional<size_t> chooseClosest(std::span<const uint32_t> servers,
                                    uint32_t caller_server) noexcept;

/// A sticky pin: which member (a stable key, e.g. a hash of the container id) the caller got,
/// and until when.
struct Pin {
  uint64_t member = 0;
  TimePoint expires;
};

struct StickyChoice {
  size_t index = 0;  // into the candidate members
  Pin pin;           // the pin to store (unchanged when the old one still holds)
  std::chrono::seconds ttl{0};
};

/// `sticky`: keep a live pin whose member is still a candidate; otherwise pick the candidate
/// at `rotation` (mod size) and pin it until now + window. The TTL is min(ttl, what is left of
/// the window, rounded down). Precondition: `members` not empty.
StickyChoice chooseSticky(const std::optional<Pin>& pin, std::span<const uint64_t> members,
                          uint32_t rotation, TimePoint now, std::chrono::seconds window,
                          std::chrono::seconds ttl) noexcept;

}  // namespace elasticdns::policy
