/* Learning-rate schedules as pure functions of the step (see clvit/optim.h). */
#include <math.h>
#include <string.h>

#include "clvit/optim.h"
#include "clvit/trainer.h"

float clv_schedule_factor(const clv_schedule *s, int64_t step)
{
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return (float)(step + 1) / (float)s->warmup_steps;
    if (s->kind == CLV_SCHED_CONSTANT)
        return 1.0f;
    if (s->kind == CLV_SCHED_STEP) {
        int64_t decays = s->step_every > 0 ? step / s->step_every : 0;
        return (float)pow((double)s->gamma, (double)decays);
    }
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0)
        return 1.0f;
    double progress = (double)(step - s->warmup_steps) / (double)span;
    if (progress > 1)
        progress = 1;
    double mn = s->min_factor;
    return (float)(mn + (1.0 - mn) * 0.5 * (1.0 + cos(M_PI * progress)));
}

double clv_schedule_sum(const clv_schedule *s)
{
    double sum = 0;
    for (int64_t k = 0; k < s->total_steps; k++)
        sum += clv_schedule_factor(s, k);
    return sum;
}

/* ---- the schedule a task trains with ---- */

int64_t clv_steps_per_epoch(int64_t n_images, int batch)
{
    return n_images >= batch ? n_images / batch : 1;
}

clv_schedule clv_task_schedule(const clv_config *cfg, int64_t steps_per_epoch)
{
    int step = cfg->schedule == CLV_SCHEDULE_STEP;
    return (clv_schedule){.kind = step ? CLV_SCHED_STEP : CLV_SCHED_COSINE,
                          .total_steps = steps_per_epoch * cfg->epochs,
                          .warmup_steps = (int64_t)lround(cfg->warmup_epochs * (double)steps_per_epoch),
                          .min_factor = cfg->min_lr_ratio,
                          .step_every = steps_per_epoch * cfg->lr_step_epochs,
                          .gamma = cfg->lr_step_gamma};
}
