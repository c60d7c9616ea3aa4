// QueueBench's popAddUsed in C: the same ring layout (virtio 1.2 2.7, split virtqueue), the same 2-descriptor
// chains, the same checks on each descriptor (index below the queue size, loop bound, no INDIRECT here, readable
// before writable, address + length without wrap and inside guest RAM, at most 2^32 bytes a chain) and the same
// acquire/release on the indices; the "driver" makes one more chain available with one store, as QueueBench's
// publish does. What the Java numbers are compared with: the floor of this work on this host.
// benchmarks/run queue builds and runs it; usage: queue-floor [iterations]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#define QSIZE 256
#define DESC 0x1000
#define AVAIL (DESC + 16 * QSIZE)
#define USED ((AVAIL + 6 + 2 * QSIZE + 3) & ~3)
#define BUFFERS 0x10000
struct region { uint64_t start, size; uint8_t *host; };
struct chain { int head, count, first_writable; uint64_t addrs[4]; uint32_t lens[4]; uint64_t rlen, wlen; };
struct queue { struct region *mem; int nregions; uint16_t next_avail, next_used; int size; int ready; int broken;
               uint8_t *desc, *avail, *used; };
static inline int contains(struct queue *q, uint64_t a, uint64_t len) {
  for (int i = 0; i < q->nregions; i++) {
    uint64_t off = a - q->mem[i].start;
    if (off <= q->mem[i].size && len <= q->mem[i].size - off) return 1;
  }
  return 0;
}
__attribute__((noinline)) static int pop(struct queue *q, struct chain *c) {
  if (!q->ready || q->broken) return 0;
  uint16_t idx = __atomic_load_n((uint16_t *)(q->avail + 2), __ATOMIC_ACQUIRE);
  int n = (uint16_t)(idx - q->next_avail);
  if (n == 0) return 0;
  if (n > q->size) { q->broken = 1; return -1; }
  int head = *(uint16_t *)(q->avail + 4 + 2 * (q->next_avail & (q->size - 1)));
  q->next_avail++;
  c->head = head; c->count = 0; c->first_writable = 0; c->rlen = c->wlen = 0;
  int index = head, visited = 0;
  for (;;) {
    if (index >= q->size) return -1;
    if (++visited > q->size) return -1;
    uint64_t addr; uint64_t lfn;
    memcpy(&addr, q->desc + 16 * index, 8); memcpy(&lfn, q->desc + 16 * index + 8, 8);
    uint32_t len = (uint32_t)lfn; int flags = (lfn >> 32) & 0xffff; int next = lfn >> 48;
    if (flags & 4) return -1;
    int writable = flags & 2;
    if (!writable && c->count > c->first_writable) return -1;
    if (addr + len < addr) return -1;
    if (len && !contains(q, addr, len)) return -1;
    if (c->rlen + c->wlen + len > (1ull << 32)) return -1;
    if (c->count == 4) return -1; // QueueBench's chains have 2; Java grows its arrays instead
    c->addrs[c->count] = addr; c->lens[c->count] = len; c->count++;
    if (writable) c->wlen += len; else { c->rlen += len; c->first_writable = c->count; }
    if (!(flags & 1)) return 1;
    index = next;
  }
}
__attribute__((noinline)) static void add_used(struct queue *q, int head, uint32_t len) {
  if (!q->ready || q->broken) return;
  int slot = q->next_used & (q->size - 1);
  uint64_t e = ((uint64_t)len << 32) | (uint32_t)head;
  memcpy(q->used + 4 + 8 * slot, &e, 8);
  q->next_used++;
  __atomic_store_n((uint16_t *)(q->used + 2), q->next_used, __ATOMIC_RELEASE);
}
int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 100000000;
  int payload = 64, chains = QSIZE / 2; uint64_t stride = (payload + 1 + 63) & ~63ull;
  uint64_t size = (BUFFERS + stride * chains + 4096 + 4095) & ~4095ull;
  uint8_t *m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct region r = {0, size, m};
  for (int c = 0; c < chains; c++) {
    uint64_t p = BUFFERS + stride * c;
    uint8_t *d = m + DESC + 16 * (2 * c);
    uint64_t a = p; uint32_t l = payload; uint16_t f = 1, nx = 2 * c + 1;
    memcpy(d, &a, 8); memcpy(d + 8, &l, 4); memcpy(d + 12, &f, 2); memcpy(d + 14, &nx, 2);
    d += 16; a = p + payload; l = 1; f = 2; nx = 0;
    memcpy(d, &a, 8); memcpy(d + 8, &l, 4); memcpy(d + 12, &f, 2); memcpy(d + 14, &nx, 2);
  }
  for (int k = 0; k < QSIZE; k++) *(uint16_t *)(m + AVAIL + 4 + 2 * k) = 2 * (k % chains);
  struct queue q = {&r, 1, 0, 0, QSIZE, 1, 0, m + DESC, m + AVAIL, m + USED};
  struct chain c; uint16_t avail_idx = 0; long sum = 0;
  for (int rep = 0; rep < 5; rep++) {
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iters; i++) {
      *(volatile uint16_t *)(m + AVAIL + 2) = ++avail_idx;   // the driver publishes one more chain
      if (pop(&q, &c) != 1) { fprintf(stderr, "pop failed\n"); return 1; }
      add_used(&q, c.head, 0);
      sum += c.head;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("C floor: pop + addUsed, 2 descriptors: %.2f ns/op\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters);
  }
  return sum == 42;
}
