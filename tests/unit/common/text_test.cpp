#include "elasticdns/text.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace elasticdns::text;
using std::chrono::milliseconds;

TEST(Duration, EveryUnit) {
  EXPECT_EQ(parseDuration("500ms").value(), milliseconds(500));
  EXPECT_EQ(parseDuration("30s").value(), milliseconds(30'000));
  EXPECT_EQ(parseDuration("5m").value(), milliseconds(300'000));
  EXPECT_EQ(parseDuration("2h").value(), milliseconds(7'200'000));
  EXPECT_EQ(parseDuration("0s").value(), milliseconds(0));
  EXPECT_EQ(parseDuration("999999999h").value(), milliseconds(999999999ull * 3'600'000));
}

TEST(Duration, ABareNumberIsSeconds) {
  EXPECT_EQ(parseDuration("30").value(), milliseconds(30'000));
  EXPECT_EQ(parseDuration("0").value(), milliseconds(0));
}

TEST(Duration, RejectsSignedFractionalAndLong) {
  for (const char* bad :
       {"", "s", "-1s", "+1s", "1.5s", "30x", "5 s", " 5s", "5S", "9999999999s", "0x10s"}) {
    auto d = parseDuration(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_NE(d.error().reason.find("not a duration"), std::string::npos);
  }
}

TEST(HostPort, Ipv4AndBracketedIpv6) {
  EXPECT_EQ(parseHostPort("127.0.0.1:0").value(), (HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(parseHostPort("[::1]:8080").value(), (HostPort{"::1", 8080}));
  EXPECT_EQ(parseHostPort("10.1.2.3:65535").value(), (HostPort{"10.1.2.3", 65535}));
  for (const char* bad :
       {"127.0.0.1", "localhost:80", "127.0.0.1:65536", "[::1]80", ":80", "[::1", "::1:53",
        "1.2.3.4:", "1.2.3.4:-1", "1.2.3.4:8a", "[1.2.3.4]:1", "1.2.3:53", ""})
    EXPECT_FALSE(parseHostPort(bad)) << bad;
}

TEST(HostPort, Ipv6Zone) {
  EXPECT_EQ(parseHostPort("[fe80::1%eth0]:53").value(), (HostPort{"fe80::1%eth0", 53}));
  EXPECT_EQ(parseHostPort("fe80::1%2", 53).value(), (HostPort{"fe80::1%2", 53}));
  for (const char* bad : {"[fe80::1%]:53", "[fe80::1%eth 0]:53", "[1.2.3.4%eth0]:53",
                          "[fe80::1%averyveryverylongname]:53"})
    EXPECT_FALSE(parseHostPort(bad)) << bad;
}

TEST(HostPort, DefaultPortForABareAddress) {
  EXPECT_EQ(parseHostPort("127.0.0.53", 53).value(), (HostPort{"127.0.0.53", 53}));
  EXPECT_EQ(parseHostPort("::1", 53).value(), (HostPort{"::1", 53}));
  EXPECT_EQ(parseHostPort("[::1]", 53).value(), (HostPort{"::1", 53}));
  EXPECT_EQ(parseHostPort("[::1]:5300", 53).value(), (HostPort{"::1", 5300}));
  EXPECT_FALSE(parseHostPort("nohost", 53));
  EXPECT_NE(parseHostPort("127.0.0.1").error().reason.find("missing ':PORT'"), std::string::npos);
}

TEST(HostPort, FormatIsTheInverse) {
  for (const char* s : {"127.0.0.1:53", "[::1]:8080", "[fd00::2]:0"}) {
    auto hp = parseHostPort(s).value();
    EXPECT_EQ(formatHostPort(hp.host, hp.port), s);
  }
}

TEST(HttpUrl, HostPortAndBase) {
  auto u = parseHttpUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->base, "");
  u = parseHttpUrl("http://[::1]:9/central/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9");
  EXPECT_EQ(u->base, "/central");
  EXPECT_EQ(u->text(), "http://[::1]:9/central");
  u = parseHttpUrl("http://central.example");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(parseHttpUrl("http://h:080").value().port, "80");
}

TEST(HttpUrl, RejectsOtherSchemesAndBadParts) {
  for (const char* bad : {"https://x", "ftp://x", "http://", "http://x:0", "http://x:70000",
                          "http://x:8a", "http://x:", "http://[::1", "http://[::1]x", "http://u@x",
                          "http://x/?a=1", "http://x/p#f", "x:80"})
    EXPECT_FALSE(parseHttpUrl(bad)) << bad;
  EXPECT_NE(parseHttpUrl("https://x").error().reason.find("https is not supported"),
            std::string::npos);
}

TEST(HttpUrl, HttpsOnlyWhereTheCallerAllowsIt) {
  auto u = parseHttpUrl("https://127.0.0.1:2379", UrlSchemes::kHttpOrHttps);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->port, "2379");
  EXPECT_EQ(u->text(), "https://127.0.0.1:2379");
  u = parseHttpUrl("https://[::1]/", UrlSchemes::kHttpOrHttps);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->text(), "https://[::1]:443");
  u = parseHttpUrl("http://etcd.example:2379", UrlSchemes::kHttpOrHttps);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_FALSE(u->https);
  EXPECT_FALSE(parseHttpUrl("http://x").value().https);
  for (const char* bad : {"ftp://x", "https://", "https://x:0", "https:/x", "HTTPS://x"})
    EXPECT_FALSE(parseHttpUrl(bad, UrlSchemes::kHttpOrHttps)) << bad;
}

TEST(Token, OneWordWhitespaceAround) {
  EXPECT_EQ(parseToken("s3cret\n").value(), "s3cret");
  EXPECT_EQ(parseToken("  \t s3cret \r\n\n").value(), "s3cret");
  EXPECT_NE(parseToken("").error().reason.find("no token"), std::string::npos);
  EXPECT_NE(parseToken(" \n\t").error().reason.find("no token"), std::string::npos);
  EXPECT_FALSE(parseToken("two words"));
  EXPECT_FALSE(parseToken("line1\nline2\n"));
}

TEST(Token, ReadsAFileAndNamesItInErrors) {
  auto dir = std::filesystem::temp_directory_path() / ("text_test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "token").string();
  std::ofstream(path) << "abc\n";
  EXPECT_EQ(readTokenFile(path).value(), "abc");
  std::ofstream(path) << "\n";
  EXPECT_NE(readTokenFile(path).error().reason.find(path), std::string::npos);
  std::ofstream(path) << std::string(kMaxTokenFileBytes + 1, 'a');
  EXPECT_FALSE(readTokenFile(path));
  auto missing = readTokenFile((dir / "missing").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().reason.find("cannot read"), std::string::npos);
  std::filesystem::remove_all(dir);
}
