/* A learned task as a plain network (`clvit export`).
 *
 * One safetensors file with the task's whole network under timm's names
 * and layout, for load_state_dict(strict=True) into the timm model of the
 * same architecture created with the task's class count (torchvision's
 * ResNet for the resnet family): every weight layer's effective weight of
 * the task (RKR's W + LM RM, Piggyback's and Mask-RKR's masks applied,
 * Independent's own copy), its output scale folded into the weight's rows
 * and the bias ((x W^T + b) s = x (diag(s) W)^T + b s), the task's norms,
 * its head as the model's head (ViT: head, Swin: head.fc as timm >= 0.9
 * names it, with patch merging at the start of stages 1..S-1; ResNet: fc,
 * plus the num_batches_tracked counters torchvision's state_dict has).
 * Metadata: format clvit-export-1, model, method, task, classes (global
 * ids), class_names (a JSON array, when the run names them), mean, std,
 * timm_layout. The file also loads back into clvit (predict --weights). */
#ifndef CLVIT_EXPORT_H
#define CLVIT_EXPORT_H

#include "clvit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_export_info {
    char layout[32];   /* the timm layout written ("timm >= 0.9 Swin") */
    int classes;       /* the head's */
    int tensors;       /* written */
    int adapted;       /* weight layers whose effective weight differs from the base's storage (an adapter) */
    int scaled;        /* of those, with an output scale folded in */
} clv_export_info;

/* Exports task (0-based) of run_dir to path (written atomically). info may be NULL. */
int clv_export_task(const char *run_dir, int task, const char *path, clv_export_info *info, clv_err *err);

#ifdef __cplusplus
}
#endif
#endif
