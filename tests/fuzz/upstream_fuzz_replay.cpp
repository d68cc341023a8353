// Replays a fuzz target on every file of its corpus and on deterministic mutations of each
// (every truncation, every single-bit flip of the first 64 bytes). Fails on a crash, a sanitizer
// report or a trap in the target.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  size_t files = 0, runs = 0;
  for (const auto& e : std::filesystem::directory_iterator(argv[1])) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    for (size_t n = 0; n <= d.size(); ++n, ++runs) LLVMFuzzerTestOneInput(d.data(), n);
    for (size_t i = 0; i < d.size() && i < 64; ++i)
      for (int b = 0; b < 8; ++b, ++runs) {
        auto m = d;
        m[i] ^= static_cast<uint8_t>(1u << b);
        LLVMFuzzerTestOneInput(m.data(), m.size());
      }
  }
  if (files == 0) {
    std::fprintf(stderr, "no corpus files in %s\n", argv[1]);
    return 1;
  }
  std::printf("replayed %zu corpus files, %zu inputs\n", files, runs);
  return 0;
}
