/* LD_PRELOAD shim for tests/crash_check.sh (not part of the test binary).
 *
 * Slower writes, so that kills at random moments land in them more often:
 * the fsync of a regular file takes CLV_SLOW_FSYNC_MS (default 20) ms
 * longer (a run's files are written to a temporary copy, fsync'ed, then
 * renamed over the file), and the removal of state.safetensors, right
 * after run.json records its task as learned, waits CLV_SLOW_UNLINK_MS
 * (default 100) ms before it. (A directory's fsync is left alone.)
 *
 * Kills at chosen points, which random moments rarely hit:
 * CLV_CRASH_AT=KIND:N makes the process SIGKILL itself at the N-th call of
 * KIND (counted from 1):
 *   fsync   before the N-th fsync of a regular file: a temporary copy
 *           written, neither durable nor renamed
 *   rename  right after the N-th rename: a file replaced, nothing after it
 *           done (the next file of the task, run.json, the checkpoint's
 *           removal)
 *   unlink  before the N-th removal of state.safetensors: run.json records
 *           the task as learned, its checkpoint is still there
 * CLV_CRASH_COUNT=FILE writes "fsync N rename N unlink N", the calls of a
 * whole run, to FILE when the process exits. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FSYNC, RENAME, UNLINK, KINDS };
static const char *const kind_names[KINDS] = {"fsync", "rename", "unlink"};
static long calls[KINDS];

static void pause_ms(const char *var, int fallback)
{
    const char *ms = getenv(var);
    usleep((useconds_t)(ms ? atoi(ms) : fallback) * 1000u);
}

/* counts a call of kind; SIGKILL when it is the one CLV_CRASH_AT names */
static void crash_point(int kind)
{
    long n = __atomic_add_fetch(&calls[kind], 1, __ATOMIC_SEQ_CST);
    const char *at = getenv("CLV_CRASH_AT");
    size_t len = strlen(kind_names[kind]);
    if (at && !strncmp(at, kind_names[kind], len) && at[len] == ':' && atol(at + len + 1) == n)
        kill(getpid(), SIGKILL);
}

__attribute__((destructor)) static void write_counts(void)
{
    const char *path = getenv("CLV_CRASH_COUNT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return;
    for (int k = 0; k < KINDS; k++)
        fprintf(f, "%s %ld\n", kind_names[k], calls[k]);
    fclose(f);
}

int fsync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct stat sb;
    if (!fstat(fd, &sb) && S_ISREG(sb.st_mode)) {
        crash_point(FSYNC);
        pause_ms("CLV_SLOW_FSYNC_MS", 20);
    }
    return real ? real(fd) : 0;
}

int rename(const char *from, const char *to)
{
    int (*real)(const char *, const char *) = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real ? real(from, to) : -1;
    crash_point(RENAME);
    return rc;
}

int unlink(const char *path)
{
    int (*real)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
    static const char state[] = "/state.safetensors";
    size_t n = strlen(path), k = sizeof state - 1;
    if (n >= k && !strcmp(path + n - k, state)) {
        crash_point(UNLINK);
        pause_ms("CLV_SLOW_UNLINK_MS", 100);
    }
    return real ? real(path) : -1;
}
