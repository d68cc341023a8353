// The snapshot persisted in state_dir: written atomically (no temporary file left behind),
// read back equal; a corrupt or missing file is an error.
#include "agent/sync/snapshot_file.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "elasticdns/protocol.hpp"
#include "support/temp_dir.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

model::Topology topology(uint64_t index, int containers) {
  return testing::sampleTopology(index, containers);
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
