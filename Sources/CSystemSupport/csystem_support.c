#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <unistd.h>
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

int pinhole_try_bind(const char *host, int port) {
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &found) != 0 || found == NULL) return -2;
    int fd = socket(found->ai_family, SOCK_STREAM, 0);
    if (fd < 0) { int e = errno; freeaddrinfo(found); return e; }
    int one = 1;
    /* As the server binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int result = bind(fd, found->ai_addr, found->ai_addrlen) == 0 ? 0 : errno;
    if (result == EADDRNOTAVAIL) result = -2;
    close(fd);
    freeaddrinfo(found);
    return result;
}

int pinhole_clock_synchronised(void) {
    struct timex state;
    memset(&state, 0, sizeof state);
    int status = adjtimex(&state);
    if (status < 0) return -1;
    return status == TIME_ERROR ? 0 : 1;
}
