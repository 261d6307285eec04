/* lib/watch.c - see watch.h.  The walk runs on its own thread with openat
 * handles (no chdir), so the caller can wait for its child meanwhile. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "watch.h"

#define WATCH_MAX_DIRS 8
#define WATCH_MAX_DEPTH 64
#define WATCH_PERIOD_MS 500

struct ep_watch {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	char *what;
	char *dirs[WATCH_MAX_DIRS + 1];
	ep_progress_fn progress;
	void *pctx;
	time_t t0;
};

static uint64_t walk(int dfd, dev_t dev, int depth)
{
	uint64_t sum = 0;
	struct dirent *e;
	DIR *d;

	if (depth > WATCH_MAX_DEPTH) {
		close(dfd);
		return 0;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* files come and go while the tool works: a vanished one counts 0 */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0)
				sum += walk(sub, dev, depth + 1);
		}
	}
	closedir(d);
	return sum;
}

uint64_t ep_watch_dir_bytes(const char *dir)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return 0;
	}
	return walk(fd, st.st_dev, 0);
}

/* A pattern's matches made since the watch began: a tool's temp dir whose
 * name it chooses (mmdebstrap.XXXXXXXXXX), told from older ones by time. */
static uint64_t glob_bytes(const char *pattern, time_t t0)
{
	uint64_t sum = 0;
	glob_t g;

	if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct stat st;

		if (lstat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode) && st.st_ctime >= t0)
			sum += ep_watch_dir_bytes(g.gl_pathv[i]);
	}
	globfree(&g);
	return sum;
}

static void report(struct ep_watch *w)
{
	uint64_t sum = 0;

	for (size_t i = 0; w->dirs[i]; i++)
		sum += strchr(w->dirs[i], '*') ? glob_bytes(w->dirs[i], w->t0)
					       : ep_watch_dir_bytes(w->dirs[i]);
	w->progress(w->pctx, w->what, sum, 0);
}

static void *watch_main(void *arg)
{
	struct ep_watch *w = arg;
	struct timespec until;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		report(w);
		pthread_mutex_lock(&w->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WATCH_PERIOD_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&w->mu);
	report(w);
	return NULL;
}

static void watch_free(struct ep_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; w->dirs[i]; i++)
		free(w->dirs[i]);
	free(w->what);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

struct ep_watch *ep_watch_start(const char *what, const char *const *dirs, ep_progress_fn progress,
				void *pctx, struct ep_error *err)
{
	struct ep_watch *w;
	size_t n = 0;
	int rc;

	if (!progress)
		return NULL;
	w = ep_calloc(1, sizeof(*w), err);
	if (!w)
		return NULL;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->progress = progress;
	w->pctx = pctx;
	w->t0 = time(NULL) - 1;
	w->what = ep_strdup(what, err);
	if (!w->what)
		goto fail;
	for (; dirs[n]; n++) {
		if (n == WATCH_MAX_DIRS) {
			ep_error_set(err, EP_EINVAL, "watch: more than %d directories",
				     WATCH_MAX_DIRS);
			goto fail;
		}
		w->dirs[n] = ep_strdup(dirs[n], err);
		if (!w->dirs[n])
			goto fail;
	}
	rc = pthread_create(&w->thread, NULL, watch_main, w);
	if (rc) {
		ep_error_errno(err, EP_EENV, rc, "start the progress thread");
		goto fail;
	}
	return w;
fail:
	watch_free(w);
	return NULL;
}

void ep_watch_stop(struct ep_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
