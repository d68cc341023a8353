#pragma once
// The ```yaml examples of one section of a README, for the tests that parse them with the
// daemons' own parsers (every config example in a README is tested; tests/README.md lists
// which test parses which section).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace elasticdns::testing {

/// The YAML blocks of `doc` (a path relative to the source tree, e.g. "agent/README.md") from
/// the line `begin_marker` up to `end_marker` (empty: to the end). A missing file or marker
/// fails the calling test; callers also assert that the section has examples.
inline std::vector<std::string> readmeYamlBlocks(const std::string& doc,
                                                 const std::string& begin_marker,
                                                 const std::string& end_marker = {}) {
  const std::string path = std::string(ELASTICDNS_SOURCE_DIR) + "/" + doc;
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto begin = text.find(begin_marker);
  EXPECT_NE(begin, std::string::npos) << doc << ": no marker " << begin_marker;
  if (begin == std::string::npos) return {};
  auto end = std::string::npos;
  if (!end_marker.empty()) {
    end = text.find(end_marker, begin);
    EXPECT_NE(end, std::string::npos)
        << doc << ": no marker " << end_marker << " after " << begin_marker;
  }
  std::string section = text.substr(begin, end == std::string::npos ? end : end - begin);
  std::vector<std::string> out;
  static const std::regex block("```yaml\n([\\s\\S]*?)```");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), block);
       it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

}  // namespace elasticdns::testing
