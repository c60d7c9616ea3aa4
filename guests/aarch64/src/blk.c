/* blk: virtio-blk (id 2) found in the device tree, driven by polling: writes a pattern to sector
 * jkrun.test.sector=<n> (default 8), flushes, reads it back and compares; prints "BLK capacity <sectors>" and
 * "BLK OK", exits 0. With jkrun.test.readonly=1 expects the write to fail with VIRTIO_BLK_S_IOERR ("BLK RO OK"). */
#include "guest.h"
#include "virtio.h"

struct req { uint32_t type, reserved; uint64_t sector; };
static struct req hdr __attribute__((aligned(16)));
static uint8_t data[512] __attribute__((aligned(512)));
static uint8_t status;
static struct virtio_dev dev;

static int request(uint32_t type, uint64_t sector, int with_data) {
    hdr.type = type; hdr.reserved = 0; hdr.sector = sector; status = 0xFF;
    struct vbuf b[3] = { { &hdr, sizeof hdr, 0 }, { data, 512, type == 0 }, { &status, 1, 1 } };
    struct vbuf *s = with_data ? b : NULL;
    int n = with_data ? 3 : 2;
    struct vbuf two[2] = { b[0], b[2] };
    if (virtio_add(&dev, 0, with_data ? s : two, n) < 0) fail("queue full");
    virtio_notify(&dev, 0);
    struct vring_used_elem e;
    const char *err = virtio_poll_used(&dev, 0, &e, 200000000UL);
    if (err) fail(err);
    return status;
}

int guest_main(const void *fdt) {
    if (fdt_check(fdt)) fail("no device tree at x0");
    cmdline_init(fdt);
    uint64_t base;
    if (virtio_find_fdt(fdt, 2, &base)) fail("no virtio-blk in the device tree");
    const char *err = virtio_init(&dev, base, 2, 0);
    if (!err) err = virtio_setup_queue(&dev, 0);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    uint64_t capacity = virtio_config32(&dev, 0) | (uint64_t)virtio_config32(&dev, 4) << 32;
    printf_lite("BLK capacity %lu\n", capacity);
    uint64_t sector = cmdline_u64("jkrun.test.sector=", 8);
    for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 7 + sector);
    int st = request(1 /* OUT */, sector, 1);
    if (cmdline_u64("jkrun.test.readonly=", 0)) {
        if (st != 1) fail("a write to a read-only disk did not fail with IOERR");
        printf_lite("BLK RO OK\n");
        return 0;
    }
    if (st != 0) fail("write failed");
    if (request(4 /* FLUSH */, 0, 0) != 0) fail("flush failed");
    memset(data, 0, 512);
    if (request(0 /* IN */, sector, 1) != 0) fail("read failed");
    for (int i = 0; i < 512; i++) if (data[i] != (uint8_t)(i * 7 + sector)) fail("read back differs");
    printf_lite("BLK OK\n");
    return 0;
}
