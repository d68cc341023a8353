/* Every map of the ElasticDNS programs: key, value, size, writer, reader. The layouts are in
 * include/elasticdns/bpf_abi.h. Maps marked "pinned" live under the configured pin path and are
 * reused by a restarted agent (after the ABI check on edns_meta). */
#ifndef ELASTICDNS_BPF_MAPS_H
#define ELASTICDNS_BPF_MAPS_H

#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>

#include "elasticdns/bpf_abi.h"

/* {saddr, sport, proto} -> {cgroup id, time recorded}; EDNS_SOCK_LRU_ENTRIES. Written by
 * edns_egress, read by the agent with bpf() when the identity slot misses. Per-CPU LRU lists
 * (no global LRU lock on the packet path). Pinned. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(map_flags, BPF_F_NO_COMMON_LRU);
  __uint(max_entries, EDNS_SOCK_LRU_ENTRIES);
  __type(key, struct edns_sock_key);
  __type(value, struct edns_sock_val);
} edns_sock_lru SEC(".maps");

/* slot (edns_slot_of(key)) -> seqlock'd {key, cgroup id}; EDNS_ID_SLOTS, mmap'ed by the agent
 * and read without a syscall. Written by edns_egress. Pinned. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, EDNS_ID_SLOTS);
  __type(key, __u32);
  __type(value, struct edns_id_slot);
} edns_id_slots SEC(".maps");

/* enum edns_counter -> per-CPU count. Written by every program, read at metrics scrape. Pinned. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, EDNS_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} edns_counters SEC(".maps");

/* 0 -> struct edns_meta; written by the agent after it created the pinned maps. Pinned. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct edns_meta);
} edns_meta SEC(".maps");

/* cgroup id -> EDNS_EXCLUDE_SELF | EDNS_EXCLUDE_SUBTREE for cgroups whose DNS is never
 * redirected (the agent's own cgroup; `exclude_cgroups` with their descendants);
 * EDNS_EXCLUDE_ENTRIES. Written by the agent before
 * it attaches, read by the redirect programs. Not pinned: each agent start builds it afresh. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, EDNS_EXCLUDE_ENTRIES);
  __type(key, __u64);
  __type(value, __u8);
} edns_exclude SEC(".maps");

/* socket -> original destination of a redirected socket. Written by connect/sendmsg, read by
 * recvmsg/getpeername. Socket-local storage: freed with the socket. Pinned, so that a socket
 * redirected by the programs of the previous agent gets its replies restored by the new ones. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct edns_orig_dst);
} edns_orig_dst SEC(".maps");

static __always_inline void edns_count(enum edns_counter reason) {
  __u32 key = reason;
  __u64* n = bpf_map_lookup_elem(&edns_counters, &key);
  if (n) *n += 1; /* per-CPU slot: no atomic needed */
}

#endif /* ELASTICDNS_BPF_MAPS_H */
