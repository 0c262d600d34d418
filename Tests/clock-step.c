/* The wall clock stepping back (or ahead) inside a process, for Tests/faults.py's clock-step trial: preloaded
 * (LD_PRELOAD), it adds the number of seconds written in the file $CLOCK_STEP_FILE to CLOCK_REALTIME as
 * clock_gettime, gettimeofday and time report it. The file is read again at most every tenth of a second, so a test
 * steps the clock of a running daemon by rewriting it. Monotonic clocks are untouched, as when an administrator or
 * NTP steps a machine's clock. (libfaketime does the same and more, but preloaded into a Swift program it left
 * CommandLine.arguments empty.)
 *
 *   gcc -shared -fPIC -O2 -o clock-step.so Tests/clock-step.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static volatile long offset_seconds;
static volatile long checked_at = -1;
static void refresh(void) {
    struct timespec now;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
    long tenth = now.tv_sec * 10 + now.tv_nsec / 100000000;
    if (tenth == checked_at) return;
    checked_at = tenth;
    const char *path = getenv("CLOCK_STEP_FILE");
    if (!path) return;
    FILE *file = fopen(path, "r");
    if (!file) return;
    long value;
    if (fscanf(file, "%ld", &value) == 1) offset_seconds = value;
    fclose(file);
}
int clock_gettime(clockid_t clock, struct timespec *time) {
    int status = syscall(SYS_clock_gettime, clock, time);
    if (status == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
        refresh();
        time->tv_sec += offset_seconds;
    }
    return status;
}
int gettimeofday(struct timeval *restrict time, void *restrict zone) {
    struct timespec now;
    int status = clock_gettime(CLOCK_REALTIME, &now);
    if (status == 0 && time) { time->tv_sec = now.tv_sec; time->tv_usec = now.tv_nsec / 1000; }
    return status;
}
time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}
