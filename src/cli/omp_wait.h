/* OpenMP's idle threads: clvit makes them sleep (OMP_WAIT_POLICY=passive)
 * unless OMP_WAIT_POLICY is set. libgomp's default spins a while before
 * sleeping; on a shared machine the spinning threads compete with other
 * processes for the cores (vit_nano under load: 323-352 img/s with 2
 * threads against 933-942 with 1), while on an idle machine passive waiting
 * costs nothing measurable (README: OpenMP threads). */
#ifndef CLVIT_CLI_OMP_WAIT_H
#define CLVIT_CLI_OMP_WAIT_H

/* Call first in main, before any thread exists: when OMP_WAIT_POLICY is
 * unset, sets it to passive and executes the program again with the same
 * arguments (libgomp has already read its environment by then). */
void clv_cli_passive_wait(char **argv);

#endif
