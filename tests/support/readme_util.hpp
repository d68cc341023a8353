#pragma once
// The ```yaml examples of one README section, for the tests that parse them with the daemons'
// own parsers (every config example in the README is tested).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace elasticdns::testing {

/// The YAML blocks of `readme` from the line `begin_marker` up to `end_marker` (empty: to the
/// end). A missing file or begin marker fails the calling test.
inline std::vector<std::string> readmeYamlBlocks(const std::string& readme,
                                                 const std::string& begin_marker,
                                                 const std::string& end_marker = {}) {
  std::ifstream in(readme);
  EXPECT_TRUE(in) << readme;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto begin = text.find(begin_marker);
  EXPECT_NE(begin, std::string::npos) << begin_marker;
  if (begin == std::string::npos) return {};
  auto end = end_marker.empty() ? std::string::npos : text.find(end_marker, begin);
  std::string section = text.substr(begin, end == std::string::npos ? end : end - begin);
  std::vector<std::string> out;
  static const std::regex block("```yaml\n([\\s\\S]*?)```");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), block);
       it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

}  // namespace elasticdns::testing
