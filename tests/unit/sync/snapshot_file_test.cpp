// The snapshot persisted in state_dir: written atomically (no temporary file left behind),
// read back equal; a corrupt or missing file is an error.
#include "agent/sync/snapshot_file.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "elasticdns/protocol.hpp"
#include "support/temp_dir.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

model::Topology topology(uint64_t index, int containers) {
  model::Topology t;
  t.index = index;
  t.versions["v1"] = 1;
  for (int i = 1; i <= containers; ++i) {
    model::Container c;
    c.id = "c" + std::to_string(i);
    c.service = "api";
    c.version = "v1";
    c.server = "host1";
    c.address = "10.0.0." + std::to_string(i);
    t.containers[c.id] = c;
  }
  t.recomputeDerived();
  return t;
}

TEST(SnapshotFile, RoundTripLeavesNoTemporaryFile) {
  TempDir dir;
  auto t = topology(42, 3);
  ASSERT_FALSE(saveSnapshot(dir.path(), t));
  ASSERT_FALSE(saveSnapshot(dir.path(), t));  // replacing works too
  auto loaded = loadSnapshot(dir.path());
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded.value(), t);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), kSnapshotFileName);
  }
  EXPECT_EQ(files, 1);
}

TEST(SnapshotFile, CorruptOrMissingFileIsAnError) {
  TempDir dir;
  EXPECT_FALSE(loadSnapshot(dir.path()));
  std::ofstream(dir.path() / kSnapshotFileName) << "{\"index\": 3, \"containers\": [";
  auto r = loadSnapshot(dir.path());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("JSON"), std::string::npos);
  std::ofstream(dir.path() / kSnapshotFileName)
      << protocol::toJson(topology(1, 1)).dump().replace(0, 1, "[");
  EXPECT_FALSE(loadSnapshot(dir.path()));
}

}  // namespace
}  // namespace elasticdns::agent
