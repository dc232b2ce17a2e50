/* Signals become a flag on a thread of their own (see stop_signal.h). */
#include "cli/stop_signal.h"

#include <pthread.h>
#include <unistd.h>

static void *signal_thread(void *arg)
{
    volatile sig_atomic_t *flag = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig))
            continue;
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST)) /* a second signal: leave at once */
            _exit(128 + sig);
        __atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

int clv_stop_on_signals(volatile sig_atomic_t *flag)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL))
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, (void *)flag))
        return -1;
    pthread_detach(t);
    return 0;
}
