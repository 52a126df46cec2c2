#define _GNU_SOURCE
#include <fcntl.h>
#include "cfile_support.h"

int pinhole_start_writeback(int fd, int64_t offset, int64_t length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
#else
    (void) fd; (void) offset; (void) length;
    return 0;
#endif
}
