// Replays a fuzz target (LLVMFuzzerTestOneInput) on every file of its corpus, so each corpus runs
// as an ordinary ctest test without libFuzzer. With --mutate, also on deterministic mutations of
// each file: every truncation and every single-bit flip of the first 64 bytes. Fails on a crash, a
// sanitizer report or a trap in the target, and when the corpus is empty.
//   replay_main [--mutate] CORPUS_DIR...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
constexpr size_t kMutatedPrefix = 64;  // bytes whose bits are flipped one at a time
}

int main(int argc, char** argv) {
  bool mutate = false;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mutate") == 0) {
      mutate = true;
      continue;
    }
    for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i]))
      if (e.is_regular_file()) files.push_back(e.path());
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s [--mutate] CORPUS_DIR... (no corpus files found)\n", argv[0]);
    return 1;
  }
  std::sort(files.begin(), files.end());
  size_t runs = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(d.data(), d.size());
    ++runs;
    if (!mutate) continue;
    for (size_t n = 0; n < d.size(); ++n, ++runs) LLVMFuzzerTestOneInput(d.data(), n);
    for (size_t i = 0; i < d.size() && i < kMutatedPrefix; ++i)
      for (int b = 0; b < 8; ++b, ++runs) {
        auto m = d;
        m[i] ^= static_cast<uint8_t>(1u << b);
        LLVMFuzzerTestOneInput(m.data(), m.size());
      }
  }
  std::printf("replayed %zu corpus files, %zu inputs\n", files.size(), runs);
  return 0;
}
