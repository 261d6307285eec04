/* lib/isolation.h - what confines a container of the native engine (runc):
 * the seccomp allow-list, the capability sets, the masked and read-only
 * /proc and /sys paths, and the fds the runtime may inherit.  Docker's
 * defaults are the anchor; docs/run.md ("Isolation") says where envpin
 * is stricter and why.  The OCI runtime spec (lib/runtime.c) takes these
 * pieces as they are. */
#ifndef EP_ISOLATION_H
#define EP_ISOLATION_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Docker's default capability set (14 capabilities, CapEff 00000000a80425fb
 * for root), and the masked and read-only paths of its default spec. */
extern const char *const ep_default_caps[];
extern const size_t ep_n_default_caps;
extern const char *const ep_masked_paths[];
extern const size_t ep_n_masked_paths;
extern const char *const ep_readonly_paths[];
extern const size_t ep_n_readonly_paths;

/* The spec's process.capabilities: ep_default_caps in bounding, effective
 * and permitted; inheritable and ambient empty.  New reference, or NULL
 * with *err set. */
json_t *ep_capabilities(struct ep_error *err);

/* The spec's linux.seccomp: an allow-list (defaultAction SCMP_ACT_ERRNO,
 * EPERM) of the syscalls Docker's default profile allows with the caps
 * above, for the native architecture of this build (x86_64 alone: an
 * i386 or x32 syscall is killed; aarch64 and arm).  clone only without
 * CLONE_NEW* flags, clone3 fails with ENOSYS (so libc falls back to
 * clone), personality only with the values Docker allows, socket not for
 * AF_VSOCK.  New reference, or NULL with *err set. */
json_t *ep_seccomp_profile(struct ep_error *err);

/* Closes every fd above 2 (close_range, else one by one) and drops
 * LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES from the environment, so that a
 * child about to exec the runtime passes nothing of envpin's to it.  Call it
 * in the child between fork and exec of a single-threaded process. */
void ep_close_inherited_fds(void);

#endif
