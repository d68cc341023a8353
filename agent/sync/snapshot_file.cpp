#include "agent/sync/snapshot_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "agent/util/unique_fd.hpp"
#include "elasticdns/protocol.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;

Error sysError(const std::string& what, const fs::path& p) {
  return Error{p.string(), what + ": " + std::strerror(errno)};
}

}  // namespace

std::optional<Error> saveSnapshot(const fs::path& dir, const model::Topology& t) {
  std::string text = protocol::toJson(t).dump();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{dir.string(), "cannot create: " + ec.message()};
  fs::path final_path = dir / kSnapshotFileName;
  fs::path tmp = dir / (std::string(kSnapshotFileName) + ".tmp." + std::to_string(getpid()));
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return sysError("open", tmp);
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        auto e = sysError("write", tmp);
        fs::remove(tmp, ec);
        return e;
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
      auto e = sysError("fsync", tmp);
      fs::remove(tmp, ec);
      return e;
    }
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    auto e = sysError("rename", final_path);
    fs::remove(tmp, ec);
    return e;
  }
  // The rename itself is durable only once the directory is.
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) return sysError("fsync", dir);
  return std::nullopt;
}

Result<model::Topology> loadSnapshot(const fs::path& dir) {
  fs::path file = dir / kSnapshotFileName;
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return Error{file.string(), ec.message()};
  if (size > kMaxSnapshotBytes) return Error{file.string(), "larger than 64 MiB"};
  std::ifstream in(file, std::ios::binary);
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size)))
    return Error{file.string(), "cannot read"};
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{file.string(), "not valid JSON"};
  auto t = protocol::parseTopology(j);
  if (!t) return Error{file.string() + ": " + t.error().field, t.error().reason};
  return t;
}

}  // namespace elasticdns::agent
