/* Ctrl-C and SIGTERM as a stop request, received by one thread of its own. */
#ifndef CLVIT_CLI_STOP_SIGNAL_H
#define CLVIT_CLI_STOP_SIGNAL_H

#include <signal.h>

/* Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
 * created after it (OpenMP's pool, the loader, Open MPI's), and starts one
 * thread that takes them with sigwait: the first sets *flag, a second exits
 * at once with 128 + signal. No handler ever runs on an interrupted thread:
 * a handler that lands on a thread inside oneDNN 2.6's generated GEMM code
 * puts its frame where that code's stack pointer is, in a heap workspace,
 * and corrupts the heap (about 1 stop in 5 before this). Call it before any
 * other thread exists. Returns 0, or -1 (errno set) if the thread cannot
 * start; the signals then stay blocked and a stop needs SIGKILL. */
int clv_stop_on_signals(volatile sig_atomic_t *flag);

#endif
