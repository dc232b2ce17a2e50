/* clvit info (placeholder until implemented). */
#include <stdio.h>

#include "cli/commands.h"

int clv_cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "clvit: info: not implemented yet\n");
    return 1;
}
