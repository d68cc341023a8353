#pragma once
// The dashboard's files (central/ui/), embedded in the binary at build time by
// central/ui/embed.cmake: central serves them at /ui/ with no file on disk.
#include <span>
#include <string_view>

namespace elasticdns::central::ui {

struct Asset {
  std::string_view path;  // "/ui/", "/ui/app.js", ...
  std::string_view content_type;
  std::string_view body;
};

std::span<const Asset> assets();

}  // namespace elasticdns::central::ui
