#pragma once
// Hot handover: a starting agent takes the DNS sockets of the running one, so a restart outside
// systemd socket activation loses no query (the same kernel sockets, with whatever waits in
// their queues, live on in the new process; HAProxy and Envoy hand their listeners over the
// same way).
//
// Every agent listens on a unix stream socket, `<state_dir>/handover.sock` (mode 0600). The
// exchange, one connection:
//   new → old  kRequest  (its PID)
//   old → new  kSockets  (its PID, the count; the descriptors ride along with SCM_RIGHTS: every
//                         worker's UDP socket per listen address, each TCP listener, the
//                         metrics listener)
//   new → old  kReady    (sent once the new agent serves: state loaded, sockets bound, eBPF
//                         attached, workers running)
// The old agent then stops reading and accepting, drains (bounded), and exits 0. Either side
// may answer kRefused with a reason instead. The peer must run as the same user or as root
// (SO_PEERCRED).
//
// Frame: version (1 byte, kProtocolVersion), type (1 byte), payload length (2 bytes, big
// endian), payload. Payloads: PID (4 bytes, big endian), then for kSockets the descriptor
// count (2 bytes), for kRefused the reason (text).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/util/inherited_sockets.hpp"
#include "agent/util/unique_fd.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent::handover {

constexpr uint8_t kProtocolVersion = 1;
constexpr const char* kSocketFileName = "handover.sock";  // in state_dir
constexpr size_t kHeaderSize = 4;
constexpr size_t kMaxPayload = 512;  // a reason text at most; the rest are a few bytes
constexpr size_t kMaxReason = kMaxPayload - 4;
constexpr size_t kMaxFds = 253;  // SCM_MAX_FD (linux/include/net/scm.h): per sendmsg
/// How long a starting agent waits for the running one's sockets before binding its own.
constexpr std::chrono::milliseconds kTakeTimeout{2000};
/// How long the running agent waits for kReady (the new one loads its snapshot and eBPF).
constexpr std::chrono::seconds kReadyTimeout{30};

enum class Type : uint8_t { kRequest = 1, kSockets = 2, kReady = 3, kRefused = 4 };

struct Message {
  Type type = Type::kRequest;
  uint32_t pid = 0;       // the sender's
  uint16_t fd_count = 0;  // kSockets: descriptors attached
  std::string reason;     // kRefused
  bool operator==(const Message&) const = default;
};

/// The frame of `m`. A reason longer than kMaxReason is cut.
std::vector<uint8_t> encode(const Message& m);

/// One message parsed from the start of `bytes`; `message` empty = incomplete, read more.
struct Parsed {
  std::optional<Message> message;
  size_t consumed = 0;
};
/// Errors (field "handover"): another protocol version, an unknown type, a payload of the wrong
/// size for its type, a payload over kMaxPayload, a descriptor count over kMaxFds.
Result<Parsed> parse(std::span<const uint8_t> bytes);

/// The control socket's path for a state directory; empty when there is no state_dir.
std::string socketPath(const std::string& state_dir);

/// What a starting agent got from the control socket.
struct TakeResult {
  enum class Status {
    kNoAgent,  // no socket file, or not ours to connect to: bind normally
    kStale,    // a socket file nobody listens on (an agent was killed): bind normally
    kTaken,    // `sockets` hold the running agent's sockets; send kReady on `connection`
    kFailed,   // the running agent refused, timed out or sent garbage: `detail` says which
  };
  Status status = Status::kNoAgent;
  std::string detail;
  uint32_t old_pid = 0;
  UniqueFd connection;
  InheritedSockets sockets;
};

/// Connects to `path` and asks the agent there for its sockets; at most `timeout` in all.
/// Blocking; call before binding anything. On kFailed every descriptor received is closed.
TakeResult takeSockets(const std::string& path, std::chrono::milliseconds timeout);

/// Tells the old agent on `connection` that this one serves now. Errors: the old agent is gone
/// or gave up waiting.
std::optional<Error> sendReady(int connection);

/// The running agent's side: listens on the control socket and hands its sockets to the first
/// agent that asks, on the control io_context.
class Listener {
 public:
  /// Descriptors to pass (not owned; they stay open here until the agent exits).
  using SocketsFn = std::function<std::vector<int>()>;
  /// The new agent (PID) serves: stop reading, drain, exit. Called at most once.
  using ReadyFn = std::function<void(uint32_t pid)>;
  Listener(boost::asio::io_context& io, std::string path, SocketsFn sockets, ReadyFn ready);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Replaces whatever is at the path (a stale socket, or one a handing-over agent no longer
  /// listens on), binds, mode 0600, listens.
  std::optional<Error> listen();
  /// Stops accepting and drops a handover in progress. Never unlinks the path: once handed
  /// over, it belongs to the new agent.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent::handover
