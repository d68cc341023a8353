#pragma once
// Runs a helper program (nginx -t, systemctl, openssl) to completion with a deadline.
#include <chrono>
#include <string>
#include <vector>

namespace elasticdns::agent {

struct ProcessResult {
  int exit_code = -1;  // -1: could not start, killed by a signal, or past the deadline
  std::string output;  // stdout and stderr together, at most kMaxProcessOutput bytes
  bool ok() const { return exit_code == 0; }
};

constexpr size_t kMaxProcessOutput = 64 * 1024;

/// argv[0] is a path (no PATH search). Past `timeout` the process is killed (SIGKILL).
ProcessResult runProcess(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

}  // namespace elasticdns::agent
