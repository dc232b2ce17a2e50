/* Warnings for runs and tasks that cannot have worked (see clvit/task_checks.h). */
#include "clvit/task_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvit/trainer.h"

/* ---- the training curve ---- */

int clv_task_curve_init(clv_task_curve *c, int epochs, int64_t steps_per_epoch, clv_err *err)
{
    memset(c, 0, sizeof *c);
    c->epochs = epochs;
    c->first_steps = (steps_per_epoch + 9) / 10;
    c->loss_sum = calloc((size_t)epochs + 1, sizeof *c->loss_sum);
    c->steps = calloc((size_t)epochs + 1, sizeof *c->steps);
    c->correct = calloc((size_t)epochs + 1, sizeof *c->correct);
    c->images = calloc((size_t)epochs + 1, sizeof *c->images);
    if (!c->loss_sum || !c->steps || !c->correct || !c->images) {
        clv_task_curve_free(c);
        return clv_errf(err, "out of memory");
    }
    return 0;
}

void clv_task_curve_free(clv_task_curve *c)
{
    free(c->loss_sum);
    free(c->steps);
    free(c->correct);
    free(c->images);
    memset(c, 0, sizeof *c);
}

void clv_task_curve_step(clv_task_curve *c, int epoch, int64_t step, double loss, int64_t correct, int64_t images)
{
    if (epoch < 0 || epoch >= c->epochs)
        return;
    c->loss_sum[epoch] += loss;
    c->steps[epoch]++;
    c->correct[epoch] += correct;
    c->images[epoch] += images;
    if (step < c->first_steps)
        c->first_loss_sum += loss;
}

double clv_task_curve_loss(const clv_task_curve *c, int epoch)
{
    return epoch >= 0 && epoch < c->epochs && c->steps[epoch] ? c->loss_sum[epoch] / (double)c->steps[epoch] : NAN;
}

double clv_task_curve_accuracy(const clv_task_curve *c, int epoch)
{
    return epoch >= 0 && epoch < c->epochs && c->images[epoch]
               ? 100.0 * (double)c->correct[epoch] / (double)c->images[epoch]
               : NAN;
}

double clv_task_curve_first_tenth(const clv_task_curve *c)
{
    return c->epochs > 0 && c->first_steps > 0 && c->steps[0] >= c->first_steps
               ? c->first_loss_sum / (double)c->first_steps
               : NAN;
}

/* ---- mask_budget_short ---- */

clv_mask_budget clv_mask_budget_of(const clv_config *cfg, double lr, int64_t steps_per_epoch)
{
    clv_schedule s = clv_task_schedule(cfg, steps_per_epoch);
    clv_mask_budget b = {.steps = s.total_steps, .factor_sum = clv_schedule_sum(&s)};
    b.movement = lr * b.factor_sum;
    b.needed = (double)cfg->mask_init - (double)cfg->threshold;
    return b;
}

#define MAX_SUGGESTED_EPOCHS 1000

/* The fewest epochs (up to MAX_SUGGESTED_EPOCHS) at which the budget
 * reaches what a bit needs, or 0. The budget grows with the epochs. */
static int epochs_needed(const clv_config *cfg, double lr, int64_t spe)
{
    clv_config c = *cfg;
    c.epochs = MAX_SUGGESTED_EPOCHS;
    if (clv_mask_budget_of(&c, lr, spe).movement < clv_mask_budget_of(&c, lr, spe).needed)
        return 0;
    int lo = cfg->epochs, hi = MAX_SUGGESTED_EPOCHS; /* lo is short, hi is enough */
    while (hi - lo > 1) {
        c.epochs = lo + (hi - lo) / 2;
        clv_mask_budget b = clv_mask_budget_of(&c, lr, spe);
        if (b.movement < b.needed)
            lo = c.epochs;
        else
            hi = c.epochs;
    }
    return hi;
}

/* x rounded up to 3 significant digits: a suggestion that is enough as printed */
static double round_up_3(double x)
{
    if (!(x > 0) || !isfinite(x))
        return x;
    double unit = pow(10.0, floor(log10(x)) - 2);
    double r = ceil(x / unit * (1 - 1e-12)) * unit;
    return r < x ? r + unit : r;
}

int clv_check_mask_budget(const clv_config *cfg, int task, double lr, int64_t steps_per_epoch, clv_warnings *out)
{
    if (cfg->optimizer != CLV_OPTIMIZER_ADAMW)
        return 0;
    clv_mask_budget b = clv_mask_budget_of(cfg, lr, steps_per_epoch);
    if (!(b.movement < b.needed))
        return 0;
    char epochs[160];
    int e = lr > 0 ? epochs_needed(cfg, lr, steps_per_epoch) : 0;
    if (e)
        snprintf(epochs, sizeof epochs, "--epochs to at least %d", e);
    else
        snprintf(epochs, sizeof epochs, "the epochs (no --epochs up to %d is enough at this --lr-mask%s)",
                 MAX_SUGGESTED_EPOCHS, cfg->schedule == CLV_SCHEDULE_STEP ? " and step decay" : "");
    double lr_min = b.factor_sum > 0 ? round_up_3(b.needed / b.factor_sum) : INFINITY;
    int rc = clv_warnings_add(out, "mask_budget_short",
                              "task %d: few or no mask bits can flip. With Adam a score moves about --lr-mask %g per "
                              "step at the schedule's peak (more only in rare steps), so over the task's %lld steps "
                              "(%s schedule, factors summing to %.4g) it moves about %.4g, short by %.4g of the %.4g (--mask-init %g - "
                              "--threshold %g) a bit needs to flip. Raise --lr-mask to at least %.3g, or %s",
                              task + 1, lr, (long long)b.steps, cfg->schedule == CLV_SCHEDULE_STEP ? "step" : "cosine", b.factor_sum, b.movement,
                              b.needed - b.movement, b.needed, (double)cfg->mask_init, (double)cfg->threshold, lr_min,
                              epochs);
    return rc ? -1 : 1;
}

/* ---- near_chance, loss_not_falling ---- */

int clv_check_task_outcome(int task, int classes, double test_accuracy, const clv_task_curve *curve,
                           clv_warnings *out)
{
    if (classes < 2)
        return 0;
    int added = 0;
    double chance = 100.0 / classes;
    if (!isnan(test_accuracy) && test_accuracy < chance + CLV_NEAR_CHANCE_POINTS) {
        if (clv_warnings_add(out, "near_chance",
                             "task %d ends at %.2f%% test accuracy, below chance + %g points (chance: %.2f%% for %d "
                             "classes): it learned next to nothing. Look at its epoch_loss and its learning rates "
                             "(--lr, --lr-head, --lr-mask)",
                             task + 1, test_accuracy, CLV_NEAR_CHANCE_POINTS, chance, classes))
            return -1;
        added++;
    }
    int last = -1;
    for (int e = 0; curve && e < curve->epochs; e++)
        if (curve->steps[e])
            last = e;
    /* a task of no more steps than its first tenth has nothing to compare */
    int judged = last > 0 || (last == 0 && curve->steps[0] > curve->first_steps);
    double first = judged ? clv_task_curve_first_tenth(curve) : NAN;
    double end = judged ? clv_task_curve_loss(curve, last) : NAN, chance_loss = log((double)classes);
    if (judged && !isnan(first) && !(end < CLV_LOSS_FALL_RATIO * first) && !(end < 0.5 * chance_loss)) {
        if (clv_warnings_add(out, "loss_not_falling",
                             "task %d's training loss did not fall: epoch %d's mean %.4f is not below %g x %.4f (the "
                             "mean of epoch 1's first %lld steps) nor below half the chance-level loss, ln(%d) / 2 = "
                             "%.4f. Change its learning rates (--lr, --lr-head, --lr-mask) or train longer",
                             task + 1, last + 1, end, CLV_LOSS_FALL_RATIO, first, (long long)curve->first_steps,
                             classes, 0.5 * chance_loss))
            return -1;
        added++;
    }
    return added;
}

/* ---- no_pretrained_base ---- */

int clv_check_run(const clv_config *cfg, clv_warnings *out)
{
    static const char *const frozen_base[] = {"rkr", "piggyback", "maskrkr", "linear"};
    int applies = 0;
    for (int i = 0; i < 4; i++)
        applies |= !strcmp(cfg->method, frozen_base[i]);
    if (!applies || strcmp(cfg->data, "decathlon") || cfg->weights[0])
        return 0;
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(cfg->domains, ","), cfg->domains);
    int rc = clv_warnings_add(out, "no_pretrained_base",
                              "the different-domain protocol expects a pretrained base (--weights); without one, "
                              "%s trains its base from scratch on the first domain (%s) and freezes it, while "
                              "Piggyback masks a network pretrained on a large, different source. Give --weights "
                              "FILE (clvit pretrain writes one)",
                              cfg->method, first);
    return rc ? -1 : 1;
}
