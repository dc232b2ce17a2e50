/* How many of a task's stored mask bits are 0 (mask density), read from
 * the task file itself.
 *
 * A task file (task-NN.safetensors) holds each packed mask as a U8 tensor
 * "mask.<layer>.<tensor>" (bit i of the mask is bit i % 8 of byte i / 8)
 * and its exact bit count in the metadata "mask_bits.<layer>.<tensor>".
 * piggyback stores <tensor> = weight, maskrkr lm, rm and f. A bit is 0
 * where the task switched the element off, so zero_bits / bits is the
 * share of the mask the task actually changed from the all-ones start
 * (scores start above the threshold). */
#ifndef CLVIT_MASK_DENSITY_H
#define CLVIT_MASK_DENSITY_H

#include "clvit/param.h"
#include "clvit/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clv_mask_layer {
    char name[CLV_NAME_LEN + 16]; /* "<layer>.<tensor>": "blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.lm" */
    int64_t bits, zero_bits;
} clv_mask_layer;

typedef struct clv_mask_density {
    int n_layers;             /* 0: the task stores no mask */
    clv_mask_layer *layers;
    int64_t bits, zero_bits;  /* over every layer */
} clv_mask_density;

/* The metadata key holding the bit count of mask tensor "mask.<rest>":
 * "mask_bits.<rest>". */
void clv_mask_bits_key(char *buf, size_t len, const char *mask_tensor_name);

/* Counts the 0 bits of every mask tensor of an open task file. The layers
 * come in the order of layer_order (names of the model's weight layers;
 * within a layer lm, rm, f, weight), masks of layers not listed after them
 * in the file's order; layer_order may be NULL (the file's order). A mask
 * without its bit count, or whose count disagrees with its bytes, is an
 * error naming the file and the tensor. */
int clv_mask_density_read(const clv_safetensors *st, const char *const *layer_order, int n_order,
                          clv_mask_density *out, clv_err *err);
void clv_mask_density_free(clv_mask_density *d);

#ifdef __cplusplus
}
#endif
#endif
