/* clvit train (placeholder until implemented). */
#include <stdio.h>

#include "cli/commands.h"

int clv_cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "clvit: train: not implemented yet\n");
    return 1;
}
