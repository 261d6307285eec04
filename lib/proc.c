#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

int ep_spawn_logged(const char *const *argv, char *const *env, const char *log, int *exit_status,
		    struct ep_error *err)
{
	int status, fd;
	pid_t pid;

	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ep_error_errno(err, EP_EENV, errno, "create '%s'", log);
	pid = fork();
	if (pid < 0) {
		close(fd);
		return ep_error_errno(err, EP_EENV, errno, "fork");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		if (nul >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close_range(3, ~0U, 0);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		setenv("LC_ALL", "C.UTF-8", 1);
		setenv("TZ", "UTC", 1);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return ep_error_errno(err, EP_EENV, errno, "wait for '%s'", argv[0]);
	}
	*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

char *ep_log_tail(const char *path, size_t max)
{
	size_t len;
	char *buf = ep_read_file(path, 64u << 20, &len, NULL);
	char *t;

	if (!buf)
		return NULL;
	t = strdup(len > max ? buf + len - max : buf);
	free(buf);
	return t;
}
