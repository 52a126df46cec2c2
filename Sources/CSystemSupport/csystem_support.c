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

int pinhole_limit_malloc_arenas(int arenas) {
#ifdef M_ARENA_MAX
    return mallopt(M_ARENA_MAX, arenas) == 1 ? 0 : -1;
#else
    (void) arenas;
    return 0;
#endif
}

int pinhole_fix_mmap_threshold(int bytes) {
#ifdef M_MMAP_THRESHOLD
    return mallopt(M_MMAP_THRESHOLD, bytes) == 1 ? 0 : -1;
#else
    (void) bytes;
    return 0;
#endif
}
