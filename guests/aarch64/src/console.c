/* console: virtio-console (id 3) found in the device tree, driven by polling: sends "hello from guest\n" on port 0,
 * then receives from port 0 until a '\n', echoing each piece uppercased; prints "RX <line>", exits 0. */
#include "guest.h"
#include "virtio.h"

static struct virtio_dev dev;
static char rxbuf[4][64];
static char txbuf[128];
static char line[256];

static void send(const char *s, uint32_t n) {
    memcpy(txbuf, s, n);
    struct vbuf b = { txbuf, n, 0 };
    if (virtio_add(&dev, 1, &b, 1) < 0) fail("tx queue full");
    virtio_notify(&dev, 1);
    struct vring_used_elem e;
    const char *err = virtio_poll_used(&dev, 1, &e, 200000000UL);
    if (err) fail(err);
}

int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    uint64_t base;
    if (virtio_find_fdt(fdt, 3, &base)) fail("no virtio-console in the device tree");
    const char *err = virtio_init(&dev, base, 3, 0);
    if (!err) err = virtio_setup_queue(&dev, 0);
    if (!err) err = virtio_setup_queue(&dev, 1);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    printf_lite("CONSOLE %lx\n", base);
    send("hello from guest\n", 17);
    for (int i = 0; i < 4; i++) {
        struct vbuf b = { rxbuf[i], sizeof rxbuf[i], 1 };
        if (virtio_add(&dev, 0, &b, 1) < 0) fail("rx queue full");
    }
    virtio_notify(&dev, 0);
    size_t n = 0;
    for (;;) {
        struct vring_used_elem e;
        err = virtio_poll_used(&dev, 0, &e, 2000000000UL);
        if (err) fail(err);
        char *buf = (char *)dev.vq[0].desc[e.id].addr;
        uint32_t len = e.len > 64 ? 64 : e.len;
        char up[64];
        for (uint32_t i = 0; i < len; i++) {
            char c = buf[i];
            up[i] = c >= 'a' && c <= 'z' ? c - 32 : c;
            if (n + 1 < sizeof line) line[n++] = c;
        }
        if (len) send(up, len);
        struct vbuf b = { buf, 64, 1 };
        virtio_add(&dev, 0, &b, 1);
        virtio_notify(&dev, 0);
        if (n && line[n - 1] == '\n') break;
    }
    line[n - 1] = 0;
    printf_lite("RX %s\n", line);
    return 0;
}
