/* Learning-rate schedules as pure functions of the step (see clvit/optim.h). */
#include <math.h>

#include "clvit/optim.h"

float clv_schedule_factor(const clv_schedule *s, int64_t step)
{
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return (float)(step + 1) / (float)s->warmup_steps;
    if (s->kind == CLV_SCHED_CONSTANT)
        return 1.0f;
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0)
        return 1.0f;
    double progress = (double)(step - s->warmup_steps) / (double)span;
    if (progress > 1)
        progress = 1;
    double mn = s->min_factor;
    return (float)(mn + (1.0 - mn) * 0.5 * (1.0 + cos(M_PI * progress)));
}
