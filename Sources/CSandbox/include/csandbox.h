// Confinement of a decode worker process: the calls Swift cannot make (prctl is variadic) or that must
// happen in one place, in a fixed order. Used only by `pinhole decode-worker`.
#ifndef CSANDBOX_H
#define CSANDBOX_H

/* Confines the calling process for decoding untrusted bytes:
   - cannot be ptraced or dump core;
   - rlimits: address space, open files, size of files it may write (0 leaves a limit as it is).
   Returns 0, or -1 if an rlimit could not be set. */
int csandbox_confine(long long address_space_bytes, long long open_files, long long file_size_bytes);

/* Lets the process use `seconds` more CPU time from now (RLIMIT_CPU soft limit: SIGXCPU then; hard
   limit one second later: SIGKILL). 0 on success. */
int csandbox_allow_cpu(long long seconds);

#endif
