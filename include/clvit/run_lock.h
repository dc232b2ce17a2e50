/* One writer per run directory: an advisory lock (flock) on DIR/.lock,
 * held for as long as the writing process lives. The kernel releases it when
 * the process ends in any way (kill -9 included), so a crashed run never
 * blocks the next one. */
#ifndef CLVIT_RUN_LOCK_H
#define CLVIT_RUN_LOCK_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates dir if missing (one level, as the trainer does), takes its lock
 * and removes the temporary files that a killed writer left behind
 * ("*.tmp.<pid>", see atomic_file.h): only the lock holder may. Returns the
 * lock's file descriptor (>= 0), or -1 with err naming the directory and,
 * when another process holds it, that process's id. */
int clv_run_lock(const char *dir, clv_err *err);
/* Releases the lock (fd < 0: nothing). */
void clv_run_unlock(int fd);

#ifdef __cplusplus
}
#endif
#endif
