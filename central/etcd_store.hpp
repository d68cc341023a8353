#pragma once
// Central's store on an etcd cluster (3.4+, its v3 JSON gateway through the project's HTTP
// client), for several central replicas over one cluster:
//   <prefix>records/<kind>/<key>   one record (its JSON text, as SqliteStore's records table)
//   <prefix>meta                   put by every commit: its mod_revision is the topology index
// The index is etcd's revision of the last commit, so every replica reports the same index for
// the same topology. A commit is one txn that succeeds only while <prefix>meta's mod_revision
// is the index memory was planned on (compare-and-swap on everything central stores), and is
// acknowledged after etcd committed it. Each replica follows the cluster with one watch on the
// prefix from its index + 1 (resumed on any endpoint when it breaks) and a heartbeat (a
// linearizable read of <prefix>meta, which needs a quorum): without a quorum answer the store
// is stale, writes are refused and reads are served from memory.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "central/store.hpp"
#include "elasticdns/http_client.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

struct EtcdConfig {
  /// http://HOST:PORT or https://HOST:PORT (all the same scheme), canonical (text::parseHttpUrl)
  std::vector<std::string> endpoints;
  std::string prefix = "/elasticdns/";
  std::chrono::milliseconds timeout{2000};  // one request to one endpoint
  std::string username;                     // with password: etcd's auth (v3 authenticate)
  std::string password_file;
  size_t max_txn_ops = 128;  // etcd's --max-txn-ops: a commit of more changes is refused
  /// https endpoints: the CAs of etcd's server certificates (empty: the system's) and the
  /// client certificate for etcd's --client-cert-auth (optional). Read by open().
  TlsFiles tls;
  bool operator==(const EtcdConfig&) const = default;
};

/// The endpoints' and `tls`'s rules, for the config parser and open(): all endpoints http:// or
/// all https:// (then `tls` applies to every one), `tls` only with https, a client certificate
/// with its key. Fields named as in the config file ("etcd/tls/key_file").
std::optional<Error> checkEtcdTls(const EtcdConfig& c);

class EtcdStore final : public Store {
 public:
  /// Reads the TLS files (https endpoints), connects (any endpoint), authenticates when a user
  /// is set, and checks that the prefix holds only central's keys; a clear error otherwise
  /// (an untrusted server certificate, a client certificate etcd refuses or none given when it
  /// requires one), with nothing written.
  static Result<std::unique_ptr<EtcdStore>> open(const EtcdConfig& config);
  ~EtcdStore() override;

  /// A linearizable range of the prefix: every record, the index (<prefix>meta's
  /// mod_revision); no change log (deltas start at the index loaded).
  Result<StoredState> load() override;
  Result<uint64_t> commit(const std::vector<StoredChange>& changes, uint64_t base) override;
  bool oneIndexPerCommit() const override { return true; }
  const char* name() const override { return "etcd"; }
  size_t maxChangesPerCommit() const override;
  std::optional<std::chrono::milliseconds> staleFor() const override;

  /// What the follower reports, on the serving thread (through `post`).
  struct Follow {
    std::function<void(std::function<void()>)> post;
    /// One commit of another replica (or of this one: memory skips indices it has).
    std::function<void(uint64_t index, std::vector<RemoteChange>)> changes;
    /// The watch fell behind etcd's compaction: reload memory, then call resume().
    std::function<void()> compacted;
    /// The quorum answered again after the store was stale, or stopped answering.
    std::function<void(bool healthy)> health;
    /// Every heartbeat (twice a second), after `health`.
    std::function<void()> beat;
  };
  /// Starts the watch after the revision of the last load and the heartbeat, on a thread of
  /// their own.
  void follow(Follow follow);
  /// After a reload: the watch goes on after the revision of that load.
  void resume();
  /// The endpoint the watch follows now (for logs and metrics).
  std::string watchEndpoint() const;

  struct Impl;

 private:
  explicit EtcdStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace elasticdns::central
