/* Which paths of a `clvit report` command line are runs (see clvit/report.h):
 * a run directory, a run.json file, or a folder of runs such as the
 * runs/default that `make run` fills (with its plots/ beside the runs). */
#define _DEFAULT_SOURCE
#include "clvit/report.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* deep enough for runs/<study>/<part>/<run>, shallow enough that a symlink loop ends */
#define MAX_DEPTH 4

void clv_report_paths_free(clv_report_paths *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->dirs[i]);
    free(list->dirs);
    list->dirs = NULL;
    list->n = 0;
}

/* Appends one line to notes; 0, or -1 when out of memory. */
__attribute__((format(printf, 2, 3))) static int note(clv_warnings *notes, const char *fmt, ...)
{
    char line[2 * CLV_PATH_LEN + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return clv_warnings_add_text(notes, line);
}

/* Adds dir unless the same directory (by real path) is listed; 1 if added, 0 if a repeat, -1 out of memory. */
static int add_dir(clv_report_paths *list, const char *dir, clv_warnings *notes)
{
    char real[PATH_MAX], other[PATH_MAX];
    if (!realpath(dir, real))
        snprintf(real, sizeof real, "%s", dir);
    for (int i = 0; i < list->n; i++)
        if (!strcmp(list->dirs[i], dir) || (realpath(list->dirs[i], other) && !strcmp(other, real))) {
            return strcmp(list->dirs[i], dir) ? note(notes, "skipping %s (the same run as %s, given before)", dir,
                                                     list->dirs[i])
                                              : note(notes, "skipping %s (given before)", dir);
        }
    char *copy = strdup(dir);
    char **dirs = copy ? realloc(list->dirs, (size_t)(list->n + 1) * sizeof *dirs) : NULL;
    if (!dirs) {
        free(copy);
        return -1;
    }
    dirs[list->n++] = copy;
    list->dirs = dirs;
    return 1;
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

/* The runs under a folder that is not a run itself, in name order; *found counts them. */
static int scan(clv_report_paths *list, const char *dir, int depth, int *found, clv_warnings *notes, clv_err *err)
{
    if (clv_report_is_run_dir(dir)) {
        int rc = add_dir(list, dir, notes);
        if (rc < 0)
            return clv_errf(err, "out of memory");
        *found += 1;
        return 0;
    }
    if (depth >= MAX_DEPTH)
        return 0;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, not_hidden, alphasort);
    if (n < 0)
        return 0; /* unreadable: not a run, and the caller notes an empty folder */
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char sub[CLV_PATH_LEN];
        struct stat st;
        int len = snprintf(sub, sizeof sub, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]->d_name);
        if (!rc && len < (int)sizeof sub && !stat(sub, &st) && S_ISDIR(st.st_mode))
            rc = scan(list, sub, depth + 1, found, notes, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

int clv_report_find_runs(clv_report_paths *list, const char *path, clv_warnings *notes, clv_err *err)
{
    struct stat st;
    if (stat(path, &st))
        return clv_errf(err, "%s: %s", path, strerror(errno));
    if (strlen(path) >= CLV_PATH_LEN - 64)
        return clv_errf(err, "%s: path too long", path);
    if (S_ISREG(st.st_mode)) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (strcmp(base, "run.json")) {
            if (note(notes, "skipping %s (a file, not a run directory or a run.json)", path) < 0)
                return clv_errf(err, "out of memory");
            return 0;
        }
        char dir[CLV_PATH_LEN];
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
        if (add_dir(list, dir, notes) < 0)
            return clv_errf(err, "out of memory");
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (note(notes, "skipping %s (neither a directory nor a run.json)", path) < 0)
            return clv_errf(err, "out of memory");
        return 0;
    }
    int found = 0;
    if (scan(list, path, 0, &found, notes, err))
        return -1;
    if (!found && note(notes, "skipping %s (no run.json in it or in its folders: not a run)", path) < 0)
        return clv_errf(err, "out of memory");
    return 0;
}
