/* One writer per run directory: a second lock on a directory is refused
 * while the first is held, naming the holder; a killed holder releases it;
 * the lock holder sweeps temporary files a killed writer left; an --out
 * that is a file is a clear error. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clvit/run_lock.h"
#include "tmp_tree.h"

Test(run_lock, one_writer_at_a_time)
{
    char dir[] = "/tmp/clvit-lock-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    clv_err err = {{0}};
    int a = clv_run_lock(dir, &err);
    cr_assert_geq(a, 0, "%s", err.msg);
    cr_expect_eq(clv_run_lock(dir, &err), -1, "a second writer is refused");
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    cr_expect(strstr(err.msg, dir) && strstr(err.msg, "in use by another clvit") && strstr(err.msg, pid), "%s",
              err.msg);
    clv_run_unlock(a);
    int b = clv_run_lock(dir, &err);
    cr_expect_geq(b, 0, "free again after unlock: %s", err.msg);
    clv_run_unlock(b);
    tmp_tree_remove(dir);
}

Test(run_lock, a_killed_holder_releases_it)
{
    char dir[] = "/tmp/clvit-lock-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        clv_err e = {{0}};
        int fd = clv_run_lock(dir, &e);
        char ok = fd >= 0 ? 'y' : 'n';
        (void)!write(ready[1], &ok, 1);
        pause(); /* until killed */
        _exit(0);
    }
    char ok = 0;
    cr_assert_eq(read(ready[0], &ok, 1), 1);
    cr_assert_eq(ok, 'y');
    clv_err err = {{0}};
    cr_expect_eq(clv_run_lock(dir, &err), -1, "held by the child");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    int fd = clv_run_lock(dir, &err);
    cr_expect_geq(fd, 0, "released by the kernel when its holder was killed: %s", err.msg);
    clv_run_unlock(fd);
    tmp_tree_remove(dir);
}

Test(run_lock, sweeps_stale_temporary_files)
{
    char dir[] = "/tmp/clvit-lock-XXXXXX", path[256];
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"task-01.safetensors.tmp.4242", "run.json.tmp.17", "notes.tmp.txt", "keep.tmp."};
    const int stale[] = {1, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    clv_err err = {{0}};
    int fd = clv_run_lock(dir, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        cr_expect_eq(access(path, F_OK) != 0, stale[i], "%s %s", names[i], stale[i] ? "removed" : "kept");
    }
    clv_run_unlock(fd);
    tmp_tree_remove(dir);
}

Test(run_lock, out_that_is_a_file)
{
    char path[] = "/tmp/clvit-lock-XXXXXX";
    int f = mkstemp(path);
    cr_assert_geq(f, 0);
    close(f);
    clv_err err = {{0}};
    cr_expect_eq(clv_run_lock(path, &err), -1);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "not a directory"), "%s", err.msg);
    unlink(path);
}
