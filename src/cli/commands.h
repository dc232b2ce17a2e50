/* Subcommands of the clvit tool. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef CLVIT_CLI_COMMANDS_H
#define CLVIT_CLI_COMMANDS_H

int clv_cmd_train(int argc, char **argv);
int clv_cmd_pretrain(int argc, char **argv);
int clv_cmd_eval(int argc, char **argv);
int clv_cmd_predict(int argc, char **argv);
int clv_cmd_export(int argc, char **argv);
int clv_cmd_bench(int argc, char **argv);
int clv_cmd_info(int argc, char **argv);
int clv_cmd_inspect(int argc, char **argv);
int clv_cmd_report(int argc, char **argv);

#endif
