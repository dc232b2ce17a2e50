/* clvit eval (placeholder until implemented). */
#include <stdio.h>

#include "cli/commands.h"

int clv_cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "clvit: eval: not implemented yet\n");
    return 1;
}
