/* clvit's version: the one place it is written (clvit --version, clvit
 * info, run.json's "clvit_version"). */
#ifndef CLVIT_VERSION_H
#define CLVIT_VERSION_H

#define CLV_VERSION "0.1.0"

#endif
