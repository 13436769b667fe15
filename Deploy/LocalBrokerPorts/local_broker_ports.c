#define _GNU_SOURCE
#include "local_broker_ports.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int pinned[16];
static int pinned_count;
static int used;
static int active;

int orc_pin_ports(const int *ports, int count) {
    if (count < 1 || count > 16) return -1;
    pthread_mutex_lock(&lock);
    memcpy(pinned, ports, sizeof(int) * (size_t)count);
    pinned_count = count;
    used = 0;
    active = 1;
    pthread_mutex_unlock(&lock);
    return 0;
}

int orc_unpin_ports(void) {
    pthread_mutex_lock(&lock);
    active = 0;
    int n = used;
    pthread_mutex_unlock(&lock);
    return n;
}

// This executable's bind() comes before libc's in symbol lookup, so librdkafka's listener calls land
// here; everything else is passed to libc's bind unchanged.
int bind(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*libc_bind)(int, const struct sockaddr *, socklen_t);
    if (!libc_bind) libc_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (address && address->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in) &&
        ((const struct sockaddr_in *)address)->sin_port == 0) {
        int port = 0;
        pthread_mutex_lock(&lock);
        if (active && used < pinned_count) port = pinned[used++];
        pthread_mutex_unlock(&lock);
        if (port > 0) {
            struct sockaddr_in copy;
            memcpy(&copy, address, sizeof copy);
            copy.sin_port = htons((uint16_t)port);
            int on = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
            return libc_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
        }
    }
    return libc_bind(fd, address, length);
}
