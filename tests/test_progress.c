/* Progress lines: the time left covers the whole run (the tasks still to
 * learn after this one), is left out once nothing is left (no "0:00:00"
 * on the last line), and a line inside an epoch says the step. */
#include <criterion/criterion.h>
#include <string.h>

#include "train/progress.h"

static void after_steps(clv_progress *p, int steps)
{
    for (int i = 0; i < steps; i++)
        clv_progress_step(p, 64, 0.5f, 32);
}

Test(progress, time_left_covers_the_run)
{
    clv_progress p;
    char line[256];
    /* task 2 of 3, 2 epochs of 10 steps, then 40 steps of task 3 */
    clv_progress_init(&p, 0, 1, 3, 2, 10, 40);
    clv_progress_epoch_begin(&p, 0, 0);
    after_steps(&p, 10);
    clv_progress_format(&p, 5.0, line, sizeof line); /* 0.5 s a step, 10 + 40 steps left */
    cr_assert(strstr(line, "task 2/3 epoch 1/2  loss 0.5000  acc 50.00%  128 img/s  run left ~0:00:25"), "%s", line);
    clv_progress_epoch_begin(&p, 1, 0);
    after_steps(&p, 4);
    clv_progress_format(&p, 4.0, line, sizeof line); /* 1 s a step, 6 + 40 left */
    cr_assert(strstr(line, "task 2/3 epoch 2/2 step 4/10  loss") && strstr(line, "run left ~0:00:46"), "%s", line);
    after_steps(&p, 6);
    clv_progress_format(&p, 10.0, line, sizeof line);
    cr_assert(strstr(line, "run left ~0:00:40"), "%s", line);
}

Test(progress, nothing_left_shows_no_time)
{
    clv_progress p;
    char line[256];
    clv_progress_init(&p, 0, 2, 3, 1, 10, 0);
    clv_progress_epoch_begin(&p, 0, 0);
    clv_progress_format(&p, 0.0, line, sizeof line);
    cr_assert_null(strstr(line, "left"), "no estimate before a step ran: %s", line);
    after_steps(&p, 10);
    clv_progress_format(&p, 3.0, line, sizeof line);
    cr_assert_null(strstr(line, "left"), "the last epoch of the last task: %s", line);
    cr_assert_null(strstr(line, "0:00:00"), "%s", line);
    clv_progress_init(&p, 0, 1, 3, 1, 10, 1); /* one fast step left: under half a second */
    clv_progress_epoch_begin(&p, 0, 0);
    after_steps(&p, 10);
    clv_progress_format(&p, 0.01, line, sizeof line);
    cr_assert_null(strstr(line, "left"), "%s", line);
}
