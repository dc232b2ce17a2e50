/* Deterministic weights shared with tools/make_vit_fixtures.py: tensor k in
 * sorted-name order, element i = 0.1 sin(0.0013 i^2 + 0.37 i + 1.7 k)
 * (norm weights 1 + that), so a fixture needs to store only outputs. */
#ifndef CLVIT_TESTS_VIT_FORMULA_H
#define CLVIT_TESTS_VIT_FORMULA_H

#include "clvit/model.h"

void vit_formula_param(clv_param *p, int k);
/* Fills the backbone and the head together, numbered in sorted-name order. */
void vit_formula_fill(clv_model *m, clv_head *h);

#endif
