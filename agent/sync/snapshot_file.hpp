#pragma once
// The topology snapshot persisted in state_dir, so that the agent can start while central is
// down: written atomically, read back bounded and validated.
#include <cstddef>
#include <filesystem>
#include <optional>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

constexpr const char* kSnapshotFileName = "topology.json";
constexpr size_t kMaxSnapshotBytes = 64u << 20;  // 64 MiB: ~300k containers at ~200 B each

/// Writes `t` to dir/topology.json atomically: temp file in `dir`, fsync, rename, fsync of `dir`.
std::optional<Error> saveSnapshot(const std::filesystem::path& dir, const model::Topology& t);
/// Reads and validates dir/topology.json (at most kMaxSnapshotBytes). An error names what is
/// wrong.
Result<model::Topology> loadSnapshot(const std::filesystem::path& dir);

}  // namespace elasticdns::agent
