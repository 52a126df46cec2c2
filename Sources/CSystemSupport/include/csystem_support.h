// Linux calls Swift's Glibc module does not expose (they need _GNU_SOURCE or <malloc.h>).
#ifndef CSYSTEM_SUPPORT_H
#define CSYSTEM_SUPPORT_H
#include <stdint.h>
/* Starts writeback of a written range without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE),
   so that a later fsync finds little left to flush. Returns 0 or -1 (errno set); harmless to ignore. */
int pinhole_start_writeback(int fd, int64_t offset, int64_t length);
/* glibc malloc: caps its arenas (mallopt M_ARENA_MAX) and fixes the size above which it uses mmap
   (M_MMAP_THRESHOLD, which also turns off the dynamic threshold). A value <= 0 leaves that setting
   alone. 0 on success. */
int pinhole_tune_malloc(int arenas, int mmap_threshold);
/* glibc malloc_trim(0): returns free pages of every arena to the system. 1 if memory was released. */
int pinhole_release_free_memory(void);
/* statfs(2)'s f_type of the filesystem holding path (NFS_SUPER_MAGIC, …), or -1 (errno set). */
int64_t pinhole_filesystem_type(const char *path);
/* Binds (and closes) a TCP listener on host:port to see whether it is free: 0 if it is, -2 if host is
   not a numeric or resolvable local address, else the errno of bind (EADDRINUSE, EACCES, ...). */
int pinhole_try_bind(const char *host, int port);
/* 1 if the kernel says the clock is synchronised (ntp_adjtime: not TIME_ERROR), 0 if not, -1 if unknown. */
int pinhole_clock_synchronised(void);
#endif
