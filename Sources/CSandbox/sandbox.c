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
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    long long used = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1;
    struct rlimit limit = { (rlim_t) (used + seconds), (rlim_t) (used + seconds + 1) };
    struct rlimit current;
    if (getrlimit(RLIMIT_CPU, &current) == 0 && current.rlim_max != RLIM_INFINITY && limit.rlim_max > current.rlim_max) {
        /* An unprivileged process cannot raise its hard limit: a worker is recycled before it matters. */
        limit.rlim_max = current.rlim_max;
        if (limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    }
    return setrlimit(RLIMIT_CPU, &limit);
}
