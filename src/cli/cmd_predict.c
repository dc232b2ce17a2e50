/* clvit predict (placeholder until implemented). */
#include <stdio.h>

#include "cli/commands.h"

int clv_cmd_predict(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "clvit: predict: not implemented yet\n");
    return 1;
}
