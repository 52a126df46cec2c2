#define _GNU_SOURCE
#include "csandbox.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

static int set_limit(int resource, long long value) {
    if (value <= 0) return 0;
    struct rlimit limit = { (rlim_t) value, (rlim_t) value };
    return setrlimit(resource, &limit);
}

int csandbox_confine(long long address_space_bytes, long long open_files, long long file_size_bytes) {
    /* No PR_SET_PDEATHSIG: it fires when the *thread* that started the worker exits, and pool threads
       come and go. A worker reads end-of-file on stdin when the server dies and exits; one busy decoding
       runs into its CPU limit. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit none = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &none) != 0) return -1;
    if (set_limit(RLIMIT_AS, address_space_bytes) != 0) return -1;
    if (set_limit(RLIMIT_NOFILE, open_files) != 0) return -1;
    if (set_limit(RLIMIT_FSIZE, file_size_bytes) != 0) return -1;
    /* The network namespace is not made here: unshare() moves only the calling thread, and this process
       already has several. The pool starts workers inside a new namespace (util-linux `unshare --net`). */
    return 0;
}

int csandbox_allow_cpu(long long seconds) {
    /* The soft limit only (SIGXCPU, whose default action ends the process): a process without
       CAP_SYS_RESOURCE (every worker in bubblewrap, which drops all capabilities, or in a user namespace)
       can lower its hard limit but never raise it again, so a hard limit set for one job would kill the
       worker a few jobs later, on a source that is fine. The wall-clock watchdog stays the last fence. */
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    long long used = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1;
    struct rlimit limit;
    if (getrlimit(RLIMIT_CPU, &limit) != 0) return -1;
    limit.rlim_cur = (rlim_t) (used + seconds);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    return setrlimit(RLIMIT_CPU, &limit);
}
