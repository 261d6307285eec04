/* lib/isolation.c - seccomp allow-list, capabilities, masked paths, fds
 * (lib/isolation.h).  The syscall lists follow the facts of Docker's default
 * profile (moby profiles/seccomp), grouped here by what they do. */
#include "isolation.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "jsonutil.h"
#include "util.h"

const char *const ep_default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",	       "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",	       "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",	   "CAP_AUDIT_WRITE",
};
const size_t ep_n_default_caps = EP_ARRAY_SIZE(ep_default_caps);

const char *const ep_masked_paths[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
const size_t ep_n_masked_paths = EP_ARRAY_SIZE(ep_masked_paths);

const char *const ep_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
const size_t ep_n_readonly_paths = EP_ARRAY_SIZE(ep_readonly_paths);

/* Allowed whatever the arguments.  Names this runc's libseccomp does not
 * know are skipped by runc, so newer calls may be listed. */
static const char *const allowed[] = {
    /* files and directories */
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "_llseek",
    "lseek",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "sendfile64",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vmsplice",
    "write",
    "writev",
    /* extended attributes */
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    /* events, polling, timers, clocks */
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "_newselect",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "adjtimex",
    "alarm",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "times",
    /* asynchronous I/O (not io_uring) */
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    /* memory */
    "brk",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    "map_shadow_stack",
    "cachestat",
    /* processes, threads, signals */
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "kill",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setpriority",
    "setrlimit",
    "setsid",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
    "ugetrlimit",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    /* ptrace of the container's own processes: seccomp cannot be bypassed
     * through it since Linux 4.8, and envpin needs 5.6 (openat2) */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    /* credentials (the capability set bounds what they can reach) */
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getuid",
    "getuid32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",
    /* sockets (socket itself: below, without AF_VSOCK) */
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",
    /* System V and POSIX IPC (ipc namespace) */
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    /* system information */
    "getrandom",
    "sysinfo",
    "uname",
    /* granted by CAP_SYS_CHROOT, which the default set has */
    "chroot",
};

#if defined(__x86_64__)
/* The native ABI only.  runc compiles the filter at every start and its
 * cost grows with each architecture listed (bench/seccomp-cost.sh: x86_64,
 * x86 and x32, Docker's list, cost about 15 ms more than x86_64 alone).
 * envpin's images are amd64: a syscall through the i386 ABI (int 0x80) or
 * the x32 ABI kills the caller with SIGSYS (t455), where Docker's profile lets
 * 32-bit programs run. */
static const char *const arches[] = {"SCMP_ARCH_X86_64"};
static const char *const allowed_arch[] = {"arch_prctl", "modify_ldt"};
#elif defined(__i386__)
static const char *const arches[] = {"SCMP_ARCH_X86"};
static const char *const allowed_arch[] = {"arch_prctl", "modify_ldt"};
#elif defined(__aarch64__) || defined(__arm__)
static const char *const arches[] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
static const char *const allowed_arch[] = {"arm_fadvise64_64", "arm_sync_file_range",
					   "breakpoint",       "cacheflush",
					   "set_tls",	       "sync_file_range2"};
#else
#error "seccomp profile: add this architecture's names (lib/isolation.c)"
#endif

/* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define CLONE_NS_FLAGS 0x7E020000ULL
/* PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query */
static const unsigned long long personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
#define AF_VSOCK_NR 40

json_t *ep_capabilities(struct ep_error *err)
{
	json_t *c = json_pack(
	    "{s:o,s:o,s:o,s:[],s:[]}", "bounding", ep_json_strings(ep_default_caps, ep_n_default_caps),
	    "effective", ep_json_strings(ep_default_caps, ep_n_default_caps), "permitted",
	    ep_json_strings(ep_default_caps, ep_n_default_caps), "inheritable", "ambient");

	if (!c)
		ep_error_oom(err);
	return c;
}

/* One rule: names, action, optional errno and one argument comparison. */
static int add_rule(json_t *rules, json_t *names, const char *action, int errno_ret, int arg,
		    unsigned long long value, unsigned long long value_two, const char *op)
{
	json_t *r = json_pack("{s:o,s:s}", "names", names, "action", action);

	if (!r)
		return -1;
	if (errno_ret && json_object_set_new(r, "errnoRet", json_integer(errno_ret)) < 0)
		goto fail;
	if (op && json_object_set_new(r, "args",
				      json_pack("[{s:i,s:I,s:I,s:s}]", "index", arg, "value",
						(json_int_t)value, "valueTwo",
						(json_int_t)value_two, "op", op)) < 0)
		goto fail;
	return json_array_append_new(rules, r);
fail:
	json_decref(r);
	return -1;
}

json_t *ep_seccomp_profile(struct ep_error *err)
{
	cleanup_json json_t *rules = json_array();
	json_t *p;
	int bad = !rules;

	bad = bad || add_rule(rules, ep_json_strings(allowed, EP_ARRAY_SIZE(allowed)), "SCMP_ACT_ALLOW",
			      0, 0, 0, 0, NULL) < 0;
	bad = bad || add_rule(rules, ep_json_strings(allowed_arch, EP_ARRAY_SIZE(allowed_arch)),
			      "SCMP_ACT_ALLOW", 0, 0, 0, 0, NULL) < 0;
	/* no new namespaces: only a clone whose flags have no CLONE_NEW* bit */
	bad = bad || add_rule(rules, json_pack("[s]", "clone"), "SCMP_ACT_ALLOW", 0, 0,
			      CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ") < 0;
	/* clone3 passes its flags in memory, where seccomp cannot look: ENOSYS
	 * makes glibc fall back to clone, where the rule above applies */
	bad = bad || add_rule(rules, json_pack("[s]", "clone3"), "SCMP_ACT_ERRNO", ENOSYS, 0, 0, 0,
			      NULL) < 0;
	for (size_t i = 0; !bad && i < EP_ARRAY_SIZE(personalities); i++)
		bad = add_rule(rules, json_pack("[s]", "personality"), "SCMP_ACT_ALLOW", 0, 0,
			       personalities[i], 0, "SCMP_CMP_EQ") < 0;
	/* vsock reaches the host (or a hypervisor) outside any namespace */
	bad = bad || add_rule(rules, json_pack("[s]", "socket"), "SCMP_ACT_ALLOW", 0, 0,
			      AF_VSOCK_NR, 0, "SCMP_CMP_NE") < 0;
	if (bad) {
		ep_error_oom(err);
		return NULL;
	}
	p = json_pack("{s:s,s:i,s:o,s:O}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
		      EPERM, "architectures", ep_json_strings(arches, EP_ARRAY_SIZE(arches)), "syscalls",
		      rules);
	if (!p)
		ep_error_oom(err);
	return p;
}

void ep_close_inherited_fds(void)
{
	struct rlimit rl;

	/* runc hands socket-activation fds (LISTEN_FDS from fd 3) to the
	 * container when LISTEN_PID names it */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (close_range(3, ~0U, 0) == 0)
		return;
	/* kernels before 5.9 */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 1u << 20)
		rl.rlim_cur = 1u << 20;
	for (int fd = 3; fd < (int)rl.rlim_cur; fd++)
		close(fd);
}
