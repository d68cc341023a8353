#pragma once
// Central's durable store behind one interface (Store): SQLite (SqliteStore, the embedded
// default) or an etcd cluster (etcd_store.hpp, replicas).
//
// SqliteStore: SQLite in WAL mode. Three tables:
//   records(kind, key, value)      the current topology, one row per record (JSON text)
//   changes(idx, change)           the change log (protocol::writeChange text), bounded
//   meta(key, value)               'index': the topology index, committed with every write
// A commit writes records, change rows and the index in one transaction, so after a crash
// (kill -9) the database holds exactly the acknowledged writes.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elasticdns/model.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace elasticdns::central {

/// `full`: the WAL is fsynced on every commit (survives power loss as well as process death).
/// `normal`: the WAL is written on every commit but fsynced only at checkpoints; a committed
/// transaction is in the kernel's page cache, so kill -9 loses nothing, power loss may lose
/// the last commits.
enum class Durability : uint8_t { kFull, kNormal };

/// What the store holds at start-up.
struct StoredState {
  model::Topology topology;  // records and index; latest_versions recomputed
  /// The retained change log, oldest first, each entry the serialized protocol::Change.
  std::vector<std::pair<uint64_t, std::string>> changes;
};

/// One change as it is stored: the record's JSON text and the change's JSON text, each
/// serialized once by the caller.
struct StoredChange {
  uint64_t index = 0;
  protocol::ChangeOp op = protocol::ChangeOp::kPut;
  protocol::RecordKind kind = protocol::RecordKind::kServer;
  std::string key;
  std::string value;   // the record (put only)
  std::string change;  // the change log row
};

/// A change another replica committed, as the store holds it (etcd's watch): the record's
/// text for a put.
struct RemoteChange {
  protocol::ChangeOp op = protocol::ChangeOp::kPut;
  protocol::RecordKind kind = protocol::RecordKind::kServer;
  std::string key;
  std::string value;
};

/// Error field of a commit refused because the store moved past `base` (another replica wrote
/// first): nothing was written; plan again once the store's changes are in memory.
constexpr const char* kCommitConflict = "conflict";

class Store {
 public:
  virtual ~Store() = default;
  /// Reads every record, the index and the retained change log. Records that fail validation
  /// make the load fail.
  virtual Result<StoredState> load() = 0;
  /// One transaction of `changes` (each with its record's text), made on a topology at index
  /// `base`. Returns only once committed, with the new index: `base` + the number of changes
  /// when every change has its own index (SQLite: the changes carry base+1, base+2, ...), or
  /// the commit's one index that every change carries (etcd: its revision; see
  /// oneIndexPerCommit). Fails with field kCommitConflict when the store is no longer at
  /// `base`, or with another error when nothing is known to be committed.
  virtual Result<uint64_t> commit(const std::vector<StoredChange>& changes, uint64_t base) = 0;
  /// True when all changes of a commit share its index (etcd), false when each change has the
  /// next index (SQLite).
  virtual bool oneIndexPerCommit() const = 0;
  /// "sqlite" or "etcd".
  virtual const char* name() const = 0;
  /// The most changes one commit may hold (etcd: its max_txn_ops, less the index key).
  virtual size_t maxChangesPerCommit() const { return SIZE_MAX; }
  /// How long the store has been out of reach (etcd: no quorum answered since), or nullopt
  /// while it answers. Writes are refused (503) while it is set; reads come from memory.
  virtual std::optional<std::chrono::milliseconds> staleFor() const { return std::nullopt; }
};

/// Puts the stored record `kind_name`/`key` with JSON text `value` into `t` (versions:
/// {"generation","name"}); an error naming records/KIND/KEY when it does not parse or validate.
std::optional<Error> putStoredRecord(model::Topology& t, const std::string& kind_name,
                                     const std::string& key, std::string_view value);

class SqliteStore final : public Store {
 public:
  /// Opens (creating if needed) `dir`/central.db.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& dir, Durability durability,
                                                   uint64_t change_retention);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Records that fail validation make the load fail (the database is ours; a bad row means
  /// corruption).
  Result<StoredState> load() override;

  /// For each change, upserts or deletes its record and appends its log row; sets the index;
  /// drops log rows older than the retention. Returns only once committed (per the
  /// durability mode). A single writer: `base` is always the stored index.
  Result<uint64_t> commit(const std::vector<StoredChange>& changes, uint64_t base) override;
  bool oneIndexPerCommit() const override { return false; }
  const char* name() const override { return "sqlite"; }

 private:
  SqliteStore(sqlite3* db, uint64_t retention) : db_(db), retention_(retention) {}
  std::optional<Error> exec(const char* sql);
  std::optional<Error> prepareStatements();
  Error sqlError(const char* what) const;
  std::optional<Error> loadRecords(model::Topology& t);

  sqlite3* db_;
  uint64_t retention_;
  sqlite3_stmt* put_record_ = nullptr;
  sqlite3_stmt* delete_record_ = nullptr;
  sqlite3_stmt* put_change_ = nullptr;
  sqlite3_stmt* trim_changes_ = nullptr;
  sqlite3_stmt* set_index_ = nullptr;
};

}  // namespace elasticdns::central
