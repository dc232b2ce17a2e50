/* Turns with bench/lockstep.py (see bench_turns.h). */
#include "cli/bench_turns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int open_fd(int fd) { return fd >= 0 && fcntl(fd, F_GETFD) != -1; }

int clv_bench_turns_parse(clv_bench_turns *t, const char *value, clv_err *err)
{
    int r = -1, w = -1, used = 0;
    if (sscanf(value, "%d,%d%n", &r, &w, &used) != 2 || value[used] != '\0')
        return clv_errf(err, "--turns: '%s' is not two file descriptors R,W", value);
    if (!open_fd(r) || !open_fd(w) || r == w)
        return clv_errf(err, "--turns %s: %d and %d are not two open file descriptors (bench/lockstep.py passes them)",
                        value, r, w);
    t->rfd = r, t->wfd = w;
    return 0;
}

int clv_bench_turn(const clv_bench_turns *t, clv_err *err)
{
    if (t->rfd < 0)
        return 0;
    char c = 'r';
    ssize_t n;
    do
        n = write(t->wfd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        return clv_errf(err, "--turns: cannot tell the lockstep runner it is ready (fd %d): %s", t->wfd,
                        n < 0 ? strerror(errno) : "nothing written");
    do
        n = read(t->rfd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || c != 'g')
        return clv_errf(err, "--turns: the lockstep runner %s (fd %d)",
                        n < 0 ? strerror(errno) : n == 0 ? "went away" : "wrote something other than its go", t->rfd);
    return 0;
}
