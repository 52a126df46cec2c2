#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include "csystem_support.h"

int pinhole_start_writeback(int fd, int64_t offset, int64_t length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
#else
    (void) fd; (void) offset; (void) length;
    return 0;
#endif
}

int pinhole_tune_malloc(int arenas, int mmap_threshold) {
    int status = 0;
#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    if (arenas > 0 && mallopt(M_ARENA_MAX, arenas) != 1) status = -1;
    if (mmap_threshold > 0 && mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1) status = -1;
#else
    (void) arenas; (void) mmap_threshold;
#endif
    return status;
}

int pinhole_release_free_memory(void) {
#ifdef __GLIBC__
    return malloc_trim(0);
#else
    return 0;
#endif
}

#include <sys/vfs.h>
int64_t pinhole_filesystem_type(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return (int64_t)info.f_type;
}
