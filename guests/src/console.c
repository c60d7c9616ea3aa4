/* console: virtio-console (id 3) at the first virtio_mmio.device= of the cmdline (jkrun.console.device=<k>: the k-th).
 * Sends "hello from guest\n" on port 0 tx (queue 1), then receives on port 0 rx (queue 0) with
 * interrupts, echoing uppercased, until a line ending in '\n'; prints "RX <text>".
 * cmdline: jkrun.test.timeout_ms=<ms> (default 30000) for each wait. */
#include "guest.h"
#include "io.h"

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
    const char *err = virtio_wait_used(&dev, 1, &e, cmdline_u64("jkrun.test.timeout_ms=", 30000));
    if (err) { printf_lite("tx: %s\n", err); fail(err); }
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    uintptr_t base; int irq;
    if (virtio_find((int)cmdline_u64("jkrun.console.device=", 0), &base, &irq)) fail("no virtio device");
    printf_lite("VIRTIO 0x%lx irq %d\n", (uint64_t)base, irq);
    const char *err = virtio_init(&dev, base, irq, 3, 0);
    if (!err) err = virtio_setup_queue(&dev, 0);
    if (!err) err = virtio_setup_queue(&dev, 1);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    printf_lite("FEATURES 0x%lx\n", dev.driver_features);

    send("hello from guest\n", 17);
    report_ok("tx");
    /* jkrun.test.panic: say what Linux says when it panics, then reset as libkrun's panic=-1 does;
     * jkrun.test.reset: reset without it (a plain reboot). */
    if (cmdline_has("jkrun.test.panic") || cmdline_has("jkrun.test.reset")) {
        if (cmdline_has("jkrun.test.panic")) {
            static const char msg[] = "[    1.234567] Kernel panic - not syncing: jkrun test panic\r\n";
            send(msg, sizeof msg - 1);
        }
        outb(0x64, 0xFE);
        for (;;) __asm__ __volatile__("pause" ::: "memory");
    }

    for (int i = 0; i < 4; i++) {
        struct vbuf b = { rxbuf[i], sizeof rxbuf[i], 1 };
        if (virtio_add(&dev, 0, &b, 1) < 0) fail("rx queue full");
    }
    virtio_notify(&dev, 0);
    size_t n = 0;
    for (;;) {
        struct vring_used_elem e;
        err = virtio_wait_used(&dev, 0, &e, cmdline_u64("jkrun.test.timeout_ms=", 30000));
        if (err) { printf_lite("rx: %s\n", err); fail(err); }
        /* the chain head is the descriptor index: find its buffer */
        char *buf = (char *)(uintptr_t)dev.vq[0].desc[e.id].addr;
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
    /* Buffers found used without sleeping owe their interrupt all the same: the device writes the used ring before
     * it signals the irqfd, so on a loaded host the interrupt can land after the last buffer was read. */
    uint64_t t1 = lapic_ticks;
    while (dev.irq_count == 0 && lapic_ticks - t1 < 1000 / TICK_MS) sti_hlt();
    printf_lite("IRQS %u\n", dev.irq_count);
    return 0;
}
