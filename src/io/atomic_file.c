/* Atomic file replacement (see clvit/atomic_file.h). */
#include "clvit/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int clv_atomic_open(clv_atomic_file *f, const char *path, clv_err *err)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return clv_errf(err, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (!(f->fp = fopen(f->tmp, "wb")))
        return clv_errf(err, "%s: cannot create: %s", f->tmp, strerror(errno));
    return 0;
}

static int sync_dir(const char *path)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int clv_atomic_commit(clv_atomic_file *f, clv_err *err)
{
    if (!f->fp)
        return clv_errf(err, "%s: not open", f->path);
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    int saved = errno;
    if (fclose(f->fp) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp);
        return clv_errf(err, "%s: write failed: %s", f->path, strerror(saved));
    }
    if (rename(f->tmp, f->path) != 0) {
        saved = errno;
        unlink(f->tmp);
        return clv_errf(err, "%s: cannot replace: %s", f->path, strerror(saved));
    }
    sync_dir(f->path); /* best effort: the rename is durable once the directory is */
    return 0;
}

void clv_atomic_abort(clv_atomic_file *f)
{
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        unlink(f->tmp);
    }
}

int clv_atomic_write(const char *path, const void *data, size_t len, clv_err *err)
{
    clv_atomic_file f;
    if (clv_atomic_open(&f, path, err))
        return -1;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        int saved = errno;
        clv_atomic_abort(&f);
        return clv_errf(err, "%s: write failed: %s", path, strerror(saved));
    }
    return clv_atomic_commit(&f, err);
}
