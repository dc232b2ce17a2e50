/* LD_PRELOAD shim for tests/crash_check.sh (not part of the test binary):
 * the fsync of a regular file takes CLV_SLOW_FSYNC_MS (default 20)
 * milliseconds longer. A run's files are written to a temporary copy,
 * fsync'ed, then renamed over the file; the longer that window, the more
 * often a kill at a random moment lands in the middle of a write, which is
 * what the check is for. (A directory's fsync, after the rename, is left
 * alone.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int fsync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *ms = getenv("CLV_SLOW_FSYNC_MS");
    struct stat sb;
    if (!fstat(fd, &sb) && S_ISREG(sb.st_mode))
        usleep((useconds_t)(ms ? atoi(ms) : 20) * 1000u);
    return real ? real(fd) : 0;
}
