/* Opening a user's file for reading, regular files only (see clvit/input_file.h). */
#include "clvit/input_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

static int refuse(const char *path, mode_t m, clv_err *err)
{
    return clv_errf(err, "%s: is %s, where a regular file is expected", path, kind(m));
}

int clv_input_check(const char *path, clv_err *err)
{
    struct stat sb;
    if (stat(path, &sb)) {
        int saved = errno;
        clv_errf(err, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    return S_ISREG(sb.st_mode) ? 0 : refuse(path, sb.st_mode, err);
}

int clv_input_open(const char *path, clv_err *err)
{
    if (clv_input_check(path, err))
        return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        clv_errf(err, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    struct stat sb = {0};
    int flags = fcntl(fd, F_GETFL);
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
        close(fd);
        return refuse(path, sb.st_mode, err);
    }
    return fd;
}

FILE *clv_input_fopen(const char *path, clv_err *err)
{
    int fd = clv_input_open(path, err);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        clv_errf(err, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

char *clv_read_stream(FILE *f, size_t *len)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (clv_grow_array((void **)&buf, &cap, n + 4096 + 1, 1, 8192)) {
            free(buf);
            return NULL;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (!got)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}
