/* clvit inspect (placeholder until implemented). */
#include <stdio.h>

#include "cli/commands.h"

int clv_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "clvit: inspect: not implemented yet\n");
    return 1;
}
