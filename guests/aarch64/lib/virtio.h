/* virtio.h — a small polling virtio-mmio (version 2) driver for the aarch64 test guests: devices are found in the
 * device tree, queues are split rings on static pages, completion is polled (no interrupts). */
#ifndef VIRTIO_H
#define VIRTIO_H
#include <stdint.h>
#define VQ_SIZE 16
struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vring_avail { uint16_t flags, idx, ring[VQ_SIZE]; uint16_t used_event; };
struct vring_used_elem { uint32_t id, len; };
struct vring_used { uint16_t flags, idx; struct vring_used_elem ring[VQ_SIZE]; uint16_t avail_event; };
struct vq { int size; struct vring_desc *desc; struct vring_avail *avail; volatile struct vring_used *used;
            uint16_t free_head, num_free, last_used; };
struct virtio_dev { uint64_t base; uint32_t device_id; uint64_t features; struct vq vq[4]; };
struct vbuf { void *addr; uint32_t len; int writable; };
/* the first virtio_mmio node of the device tree whose device has id `id`; 0 ok */
int virtio_find_fdt(const void *fdt, uint32_t id, uint64_t *base);
const char *virtio_init(struct virtio_dev *d, uint64_t base, uint32_t want_id, uint64_t wanted);
const char *virtio_setup_queue(struct virtio_dev *d, int q);
const char *virtio_driver_ok(struct virtio_dev *d);
int virtio_add(struct virtio_dev *d, int q, const struct vbuf *bufs, int n);   /* head id or -1 */
void virtio_notify(struct virtio_dev *d, int q);
/* polls queue q's used ring for up to `spins` rounds: 0 and *out filled (its chain freed), or an error */
const char *virtio_poll_used(struct virtio_dev *d, int q, struct vring_used_elem *out, uint64_t spins);
uint32_t virtio_config32(struct virtio_dev *d, uint32_t off);
#endif
