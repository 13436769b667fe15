/* Preloaded into our binaries under callgrind (./Deploy/bench-enrollment.sh instructions). libdispatch parks the
 * main thread in sigsuspend() with a mask in read-only memory; valgrind 3.19 writes to that mask and dies
 * ("VALGRIND INTERNAL ERROR ... SIGSEGV"). The same call with a copy of the mask on the stack. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
}
