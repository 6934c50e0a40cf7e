/* A misbehaving stand-in for pinlat-agent, run as /init by the fault-injection tests.
 * Built static with one of -DMODE_HANG, -DMODE_GARBAGE, -DMODE_CRASH. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

static void put(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

int main(void) {
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    int con = open("/dev/console", O_WRONLY);
    if (con >= 0) put(con, "fake-agent: up\n", 15);
#if defined(MODE_HANG)
    for (;;) pause();
#elif defined(MODE_GARBAGE)
    int fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
    struct termios t;
    if (fd >= 0 && tcgetattr(fd, &t) == 0) { cfmakeraw(&t); tcsetattr(fd, TCSANOW, &t); }
    static char buf[65536];
    for (int i = 0; i < 2000; i++) {
        /* bad CRC */
        put(fd, "PLF1 2 00000000 {}\n", 19);
        /* length that does not match the body */
        put(fd, "PLF1 999 00000000 {}\n", 21);
        /* a valid CRC over invalid JSON: crc32("{x") */
        put(fd, "PLF1 2 d3cc4bcc {x\n", 19);
        /* console noise */
        put(fd, "random noise \x01\x02\xff\n", 18);
    }
    /* one line of 1.25 MiB without a newline until the end: over the runner's 1 MiB cap */
    memset(buf, 'A', sizeof buf);
    put(fd, "PLF1 1310720 00000000 ", 22);
    for (int i = 0; i < 20; i++) put(fd, buf, sizeof buf);
    put(fd, "\n", 1);
    fsync(fd);
    sleep(1);
#elif defined(MODE_CRASH)
    /* power off at once: QEMU exits before any hello */
#endif
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
