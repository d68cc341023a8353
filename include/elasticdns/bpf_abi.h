/* ElasticDNS eBPF ABI: every struct and constant shared by the programs in bpf/ and the agent's
 * loader and caller registry (agent/ebpf/loader.cpp, agent/ebpf/callers.cpp). C, included by
 * both sides.
 * Any change to a layout below must bump EDNS_BPF_ABI_VERSION: a restarted agent checks it
 * before it reuses the maps pinned by its predecessor. */
#ifndef ELASTICDNS_BPF_ABI_H
#define ELASTICDNS_BPF_ABI_H

#include <linux/types.h>

#ifdef __cplusplus
#define EDNS_STATIC_ASSERT static_assert
#else
#define EDNS_STATIC_ASSERT _Static_assert
#endif

/* Version of the layouts in this file, stored in the pinned `edns_meta` map. */
#define EDNS_BPF_ABI_VERSION 3

/* Number of slots of the mmap'able identity array (power of two; 2 MiB at 32 bytes a slot). A
 * slot is overwritten by the next flow that hashes to it, so this bounds the number of
 * concurrently outstanding queries that are identified without a bpf() syscall. */
#define EDNS_ID_SLOTS 65536
/* Entries of the LRU fallback map {saddr, sport, proto} -> {cgroup, time}. */
#define EDNS_SOCK_LRU_ENTRIES 65536
/* Cgroups whose DNS is never redirected (the agent's own + `exclude_cgroups`). */
#define EDNS_EXCLUDE_ENTRIES 256
/* Values of the exclusion map. The agent's own cgroup is excluded alone (it may be an ancestor
 * of the containers, e.g. the root cgroup); `exclude_cgroups` entries with their subtree. */
#define EDNS_EXCLUDE_SELF 1
#define EDNS_EXCLUDE_SUBTREE 2
/* Ancestor levels checked against the exclusion map (cgroup nesting depth bound). */
#define EDNS_MAX_CGROUP_DEPTH 16
/* The DNS port that is redirected (RFC 1035 section 4.2). */
#define EDNS_DNS_PORT 53

/* Who sent a packet to the agent, as the agent's socket sees it. IPv4 addresses are stored
 * v4-mapped (::ffff:a.b.c.d) so that one key serves IPv4, IPv6 and dual-stack sockets. */
struct edns_sock_key {
  __u32 addr[4]; /* source address, network byte order, v4-mapped for IPv4 */
  __u16 sport;   /* source port, network byte order */
  __u8 proto;    /* IPPROTO_UDP or IPPROTO_TCP */
  __u8 pad;      /* zero */
};
EDNS_STATIC_ASSERT(sizeof(struct edns_sock_key) == 20, "edns_sock_key layout");

/* Value of the LRU map. */
struct edns_sock_val {
  __u64 cgroup_id; /* bpf_skb_cgroup_id() of the sender = inode of its cgroup v2 directory */
  __u64 time_ns;   /* bpf_ktime_get_ns() when the packet was sent */
};
EDNS_STATIC_ASSERT(sizeof(struct edns_sock_val) == 16, "edns_sock_val layout");

/* One slot of the BPF_F_MMAPABLE identity array, written by the egress program and read by the
 * agent through a shared mapping. `seq` is a seqlock: odd while the (single, try-locked) writer
 * updates the slot. A reader accepts the slot only if `seq` is even and unchanged across its
 * read, and `key` equals the peer it looks up. */
struct edns_id_slot {
  __u32 seq;
  struct edns_sock_key key;
  __u64 cgroup_id;
};
EDNS_STATIC_ASSERT(sizeof(struct edns_id_slot) == 32, "edns_id_slot layout");

/* Per-socket state of the redirect programs (socket-local storage, created by the first
 * connect/sendmsg to port 53): the original destination, restored on receive, and the
 * socket's exclusion decision, cached so that later sends skip the exclusion map. */
struct edns_orig_dst {
  __u32 addr[4];  /* network byte order, v4-mapped when the original was IPv4 */
  __u16 port;     /* network byte order */
  __u8 valid;     /* addr/port hold a redirected destination */
  __u8 excluded;  /* the socket's cgroup is excluded; meaningful when excl_gen matches */
  __u64 excl_gen; /* the cfg_exclude_gen of the programs that decided `excluded` */
};
EDNS_STATIC_ASSERT(sizeof(struct edns_orig_dst) == 32, "edns_orig_dst layout");

/* Value of the one-entry `edns_meta` array: what the pinned maps were created for. */
struct edns_meta {
  __u32 abi_version;
  __u32 id_slots;
};
EDNS_STATIC_ASSERT(sizeof(struct edns_meta) == 8, "edns_meta layout");

/* Per-CPU event counters, one index per reason (exported as elasticdns_bpf_events_total). */
enum edns_counter {
  EDNS_CNT_IDENTIFIED = 0, /* egress: a packet to the agent's port was recorded */
  EDNS_CNT_SLOT_BUSY,      /* egress: mmap slot being written by another CPU; LRU only */
  EDNS_CNT_MAP_FULL,       /* egress: LRU update failed */
  EDNS_CNT_NOT_PARSED,     /* egress: packet to parse failed (short, IPv6 ext. headers) */
  EDNS_CNT_REDIRECTED,     /* connect/sendmsg: destination port 53 rewritten to the agent */
  EDNS_CNT_EXCLUDED,       /* connect/sendmsg: sender's cgroup is excluded */
  EDNS_CNT_NO_TARGET,      /* connect/sendmsg: no agent address of that family */
  EDNS_CNT_STORAGE_FAIL,   /* connect/sendmsg: socket storage unavailable; not redirected */
  EDNS_CNT_RESTORED,       /* recvmsg/getpeername: source rewritten back to the original */
  EDNS_CNT_MAX,
};

/* Labels of the counters, indexed by enum edns_counter. */
#define EDNS_COUNTER_NAMES                                                                      \
  {                                                                                             \
    "identified", "slot_busy", "map_full", "not_parsed", "redirected", "excluded", "no_target", \
        "storage_fail", "restored"                                                              \
  }

/* Slot of a key in the identity array: FNV-1a over the key's five 32-bit words, folded. The
 * programs and the agent must compute the same function, hence it lives here. */
static inline __u32 edns_slot_of(const struct edns_sock_key* k) {
  __u32 h = 2166136261u;            /* FNV-1a offset basis */
  h = (h ^ k->addr[0]) * 16777619u; /* FNV-1a prime */
  h = (h ^ k->addr[1]) * 16777619u;
  h = (h ^ k->addr[2]) * 16777619u;
  h = (h ^ k->addr[3]) * 16777619u;
  h = (h ^ ((__u32)k->sport | ((__u32)k->proto << 16))) * 16777619u;
  return (h ^ (h >> 16)) & (EDNS_ID_SLOTS - 1);
}

#endif /* ELASTICDNS_BPF_ABI_H */
