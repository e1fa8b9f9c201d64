/*
 * A faulty file system for the real sessiond binary, loaded with LD_PRELOAD
 * (tests/store_faults/faulty_fs.rs compiles it with gcc).
 *
 * While the file that $FAULTY_FS_CONTROL names exists, its first word says
 * which fault every call of the process meets:
 *   fsync-eio     fsync and fdatasync fail with EIO (nothing is flushed);
 *   fsync-slow    fsync and fdatasync take 100 ms longer, then succeed;
 *   write-eio     writes to regular files fail with EIO;
 *   write-enospc  writes to regular files fail with ENOSPC.
 * Without the file, every call goes straight to the C library. Writes to
 * pipes, sockets and terminals (the log on stderr) are never touched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum fault { NONE, FSYNC_EIO, FSYNC_SLOW, WRITE_EIO, WRITE_ENOSPC };

/* The fault in force now: read from the control file at every call. */
static enum fault current(void) {
    const char *path = getenv("FAULTY_FS_CONTROL");
    if (path == NULL) {
        return NONE;
    }
    int saved = errno;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return NONE;
    }
    char word[32] = {0};
    ssize_t n = read(fd, word, sizeof word - 1);
    close(fd);
    errno = saved;
    if (n <= 0) {
        return NONE;
    }
    if (strncmp(word, "fsync-eio", 9) == 0) return FSYNC_EIO;
    if (strncmp(word, "fsync-slow", 10) == 0) return FSYNC_SLOW;
    if (strncmp(word, "write-eio", 9) == 0) return WRITE_EIO;
    if (strncmp(word, "write-enospc", 12) == 0) return WRITE_ENOSPC;
    return NONE;
}

/* Whether a write to fd meets the fault: -1 with errno set if it does. */
static int write_fault(int fd) {
    enum fault fault = current();
    if (fault != WRITE_EIO && fault != WRITE_ENOSPC) {
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return 0;
    }
    errno = fault == WRITE_EIO ? EIO : ENOSPC;
    return -1;
}

/* Whether a flush meets the fault: -1 with errno set if it fails. */
static int sync_fault(void) {
    switch (current()) {
    case FSYNC_EIO:
        errno = EIO;
        return -1;
    case FSYNC_SLOW: {
        struct timespec pause = {0, 100 * 1000 * 1000};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        }
        return 0;
    }
    default:
        return 0;
    }
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int fsync(int fd) {
    if (sync_fault() != 0) return -1;
    return NEXT(fsync)(fd);
}

int fdatasync(int fd) {
    if (sync_fault() != 0) return -1;
    return NEXT(fdatasync)(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (write_fault(fd) != 0) return -1;
    return NEXT(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (write_fault(fd) != 0) return -1;
    return NEXT(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    if (write_fault(fd) != 0) return -1;
    return NEXT(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (write_fault(fd) != 0) return -1;
    return NEXT(writev)(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    if (write_fault(fd) != 0) return -1;
    return NEXT(pwritev)(fd, iov, iovcnt, offset);
}
