// The ContainerNet key file: created 0600 with a clamped key whose public key `wg pubkey`
// agrees with, read back the same, and refused with a clear error when its mode or content is
// wrong.
#include "agent/containernet/key.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cn-key-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "sub" / "containernet.key").string(); }
  void write(const std::string& content, mode_t mode) {
    fs::create_directories(dir_ / "sub");
    std::ofstream(path()) << content;
    ::chmod(path().c_str(), mode);
  }
  fs::path dir_;
};

TEST_F(KeyFile, CreatedWithMode0600AndReadBackTheSame) {
  auto created = loadOrCreateKeyFile(path());
  ASSERT_TRUE(created.ok()) << created.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(created->private_key[0] & 7, 0);  // clamped (RFC 7748 5)
  EXPECT_EQ(created->private_key[31] & 0xc0, 64);
  auto again = loadOrCreateKeyFile(path());
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->private_key, created->private_key);
  EXPECT_EQ(again->public_key, created->public_key);
  // No temporary file is left beside it.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "sub")) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(KeyFile, PublicKeyAgreesWithWg) {
  if (::access("/usr/bin/wg", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/wg (wireguard-tools)";
  auto created = loadOrCreateKeyFile(path());
  ASSERT_TRUE(created.ok());
  std::string cmd = "/usr/bin/wg pubkey < '" + path() + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[128] = {};
  ASSERT_NE(fgets(buf, sizeof buf, p), nullptr);
  ::pclose(p);
  EXPECT_EQ(std::string(buf), keyToBase64(created->public_key) + "\n");
}

TEST_F(KeyFile, AWgGenkeyFileIsRead) {
  // RFC 7748 6.1's Alice: private key 77076d0a..., public key 8520f009...
  auto priv = keyFromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  ASSERT_TRUE(priv.ok());
  write(keyToBase64(priv.value()) + "\n", 0600);
  auto k = loadKeyFile(path());
  ASSERT_TRUE(k.ok()) << k.error().message();
  EXPECT_EQ(keyToHex(k->public_key),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}

TEST_F(KeyFile, WrongModeIsRefused) {
  auto key = generatePrivateKey();
  ASSERT_TRUE(key.ok());
  write(keyToBase64(key.value()) + "\n", 0644);
  auto k = loadOrCreateKeyFile(path());
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().field, path());
  EXPECT_NE(k.error().reason.find("mode 0644"), std::string::npos) << k.error().reason;
  // Nothing was changed: the file is still the operator's.
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(KeyFile, BadContentIsRefused) {
  for (const std::string& content :
       {std::string(""), std::string("not a key\n"), std::string(44, 'A'),
        std::string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextra\n"),
        std::string(1000, 'A')}) {
    write(content, 0600);
    auto k = loadKeyFile(path());
    ASSERT_FALSE(k.ok()) << content;
    EXPECT_NE(k.error().reason.find("not a WireGuard private key"), std::string::npos)
        << k.error().reason;
    fs::remove(path());
  }
}

TEST(KeyText, Base64AndHexRoundTrip) {
  auto k = generatePrivateKey();
  ASSERT_TRUE(k.ok());
  auto b64 = keyToBase64(k.value());
  EXPECT_EQ(b64.size(), 44u);
  EXPECT_EQ(keyFromBase64(b64).value(), k.value());
  EXPECT_EQ(keyFromHex(keyToHex(k.value())).value(), k.value());
  EXPECT_FALSE(keyFromBase64("short=").ok());
  EXPECT_TRUE(keyFromBase64(std::string(43, 'A') + "=").ok());  // all zero bytes
  EXPECT_FALSE(
      keyFromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=").ok());  // not canonical
  EXPECT_FALSE(keyFromHex(std::string(64, 'g')).ok());
}

}  // namespace
}  // namespace elasticdns::agent
