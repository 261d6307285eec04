/* lib/rootless.h - running without root: the user namespace the native
 * engine enters (docs/rootless.md), and the facts `envpin doctor` reports.
 *
 * Two mappings:
 *   single  the caller's uid and gid become 0 inside, nothing else is
 *           mapped.  Needs no helper; setgroups is denied, so the caller's
 *           supplementary groups stay in force (device nodes owned by a
 *           'video' or 'render' group keep working), and runc, seeing
 *           "deny", does not call setgroups.
 *   range   for a process that runs as uid U != 0 (`--user`, or an image
 *           User): the caller becomes U inside (the workspace files it
 *           writes are still the caller's), 0..U-1 and U+1..65535 come from
 *           the caller's /etc/subuid and /etc/subgid ranges, written by
 *           newuidmap/newgidmap.  setgroups is allowed there (newgidmap's
 *           rule), so runc sets the image's groups: device nodes must be
 *           readable by the mapped user itself. */
#ifndef EP_ROOTLESS_H
#define EP_ROOTLESS_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* One subordinate-id range of a user, from /etc/subuid or /etc/subgid. */
struct ep_subid {
	unsigned long start, count;
};

/* The first range for user (by name, or by the decimal id) in file (a
 * "name:start:count" file), with count >= min.  Returns 1 found, 0 none
 * (file missing or no line), -1 on a read error. */
int ep_subid_find(const char *file, const char *name, unsigned long id, unsigned long min,
		  struct ep_subid *out, struct ep_error *err);

/* Moves the calling process (single-threaded) into a new user and mount
 * namespace.  uid/gid are the ids the caller's own ids take inside: 0/0 is
 * the single mapping; anything else the range mapping (EP_EENV naming the
 * missing piece when there is no subuid/subgid range or no newuidmap).
 * Afterwards the process is root inside, with every capability there. */
int ep_userns_enter(uid_t uid, gid_t gid, struct ep_error *err);

/* 1 when an unprivileged user namespace can be created here: a forked
 * child tries unshare(CLONE_NEWUSER) (the sysctls and AppArmor rules that
 * forbid it are many; trying is the one sure test).  With err (may be
 * NULL), the errno of the refusal. */
int ep_userns_available(void);
int ep_userns_probe(int *err_no);

/* 1 when this process runs in a user namespace other than the initial one
 * (uid_map is not the identity over the whole range). */
int ep_in_userns(void);

#endif
