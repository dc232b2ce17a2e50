/* A list of warnings, each "code: a human sentence" (run.json's "warnings"
 * arrays, run level and per task; the codes are a contract with readers of
 * run.json: near_chance, loss_not_falling, mask_budget_short,
 * no_pretrained_base). */
#ifndef CLVIT_WARNINGS_H
#define CLVIT_WARNINGS_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_warnings {
    int n;
    char **items; /* malloc'ed strings */
    size_t cap;
} clv_warnings;

/* Appends "code: <formatted sentence>". Returns 0, or -1 when out of memory. */
int clv_warnings_add(clv_warnings *w, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends a finished string as it is (reading run.json back). */
int clv_warnings_add_text(clv_warnings *w, const char *text);
/* 1 if some warning starts with "code:". */
int clv_warnings_has(const clv_warnings *w, const char *code);
void clv_warnings_clear(clv_warnings *w);

#ifdef __cplusplus
}
#endif
#endif
