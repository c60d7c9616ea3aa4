/* fsbench: drives a virtio-fs (id 26) share's FUSE server as hard as a tiny guest can, for the FsThroughput
 * benchmark (the host times each phase from the report lines). The device is the first virtio_mmio.device= of
 * the cmdline; every request is one descriptor chain on the request queue (1), completions come through the
 * device interrupt, and up to `depth` requests are kept in flight.
 *
 * Phases, each announced as "PHASE <name> start" and "PHASE <name> done <ops> <bytes>":
 *   init       FUSE INIT 7.31 (ops 1)
 *   seq-write  CREATE fsbench.dat, WRITE `mib` MiB sequentially in chunks of max_write (or chunk_kib), FSYNC
 *              (fdatasync), RELEASE (ops = WRITE requests, bytes = bytes written); "PHASE seq-write fsync"
 *              comes between the last WRITE's completion and the FSYNC
 *   seq-read   OPEN fsbench.dat, READ it back sequentially in the same chunks, RELEASE (ops = READ requests)
 *   create     MKDIR files, then CREATE (O_CREAT|O_EXCL) + RELEASE of files/f0 .. f<files-1> (ops = files)
 *   stat       LOOKUP of each file: one request, whose reply carries the attributes (ops = files)
 *   unlink     UNLINK of each file (ops = files)
 *   cleanup    untimed: BATCH_FORGET of every node looked up (on the hiprio queue 0, no reply, as Linux
 *              sends FORGETs), RMDIR files (ops = forgotten nodes)
 * fsbench.dat stays in the share: every chunk's first 8 bytes are STAMP(chunk index), the first 8 bytes of
 * every other 4 KiB page PAGE_PAT(page index within the chunk), the rest zero. The guest writes those words
 * once per buffer (and the stamp per request); it never touches the rest of the data.
 * Also prints "FUSE 7.<minor> max_write N max_pages P chunk C depth D", "IRQS n", then "FSBENCH ok" (exit 0) or
 * "FAIL: <what>" (exit 1).
 *
 * cmdline: jkrun.fsbench.mib=<MiB> (64), jkrun.fsbench.files=<n> (1000), jkrun.fsbench.depth=<1..5> (4),
 *          jkrun.fsbench.chunk_kib=<KiB> (0: the server's max_write), jkrun.test.timeout_ms=<ms> (30000) per wait.
 * Data buffers live at BUF_BASE (32 MiB, outside the image), depth * chunk bytes, then the node ids. */
#include "guest.h"

enum { FUSE_LOOKUP = 1, FUSE_MKDIR = 9, FUSE_UNLINK = 10, FUSE_RMDIR = 11, FUSE_OPEN = 14, FUSE_READ = 15,
       FUSE_WRITE = 16, FUSE_RELEASE = 18, FUSE_FSYNC = 20, FUSE_INIT = 26, FUSE_CREATE = 35,
       FUSE_BATCH_FORGET = 42 };
#define ROOT_ID 1
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define S_IFMT 0170000
#define S_IFREG 0100000
#define FUSE_BIG_WRITES (1u << 5)
#define FUSE_MAX_PAGES (1u << 22)
#define FSYNC_FDATASYNC 1

#define BUF_BASE 0x2000000UL
#define MAX_DEPTH 5                    /* 3 descriptors per request, VQ_SIZE (16) descriptors */
#define PAGE 4096
#define STAMP(k) (0x4653424E00000000ULL | (uint64_t)(k))       /* "FSBN" + chunk index */
#define PAGE_PAT(p) (0x5041474500000000ULL | (uint64_t)(p))    /* "PAGE" + page index */
#define FORGET_BATCH 4096

struct fuse_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid, padding; };
struct fuse_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct fuse_init_in { uint32_t major, minor, max_readahead, flags; };
struct fuse_init_out { uint32_t major, minor, max_readahead, flags; uint16_t max_background,
                       congestion_threshold; uint32_t max_write, time_gran; uint16_t max_pages,
                       map_alignment; uint32_t flags2, unused[7]; };
struct fuse_attr { uint64_t ino, size, blocks, atime, mtime, ctime; uint32_t atimensec, mtimensec,
                   ctimensec, mode, nlink, uid, gid, rdev, blksize, flags; };
struct fuse_entry_out { uint64_t nodeid, generation, entry_valid, attr_valid;
                        uint32_t entry_valid_nsec, attr_valid_nsec; struct fuse_attr attr; };
struct fuse_open_in { uint32_t flags, open_flags; };
struct fuse_open_out { uint64_t fh; uint32_t open_flags, padding; };
struct fuse_create_in { uint32_t flags, mode, umask, open_flags; };
struct fuse_mkdir_in { uint32_t mode, umask; };
struct fuse_rw_in { uint64_t fh, offset; uint32_t size, rw_flags; uint64_t lock_owner; uint32_t flags, padding; };
struct fuse_write_out { uint32_t size, padding; };
struct fuse_fsync_in { uint64_t fh; uint32_t fsync_flags, padding; };
struct fuse_release_in { uint64_t fh; uint32_t flags, release_flags; uint64_t lock_owner; };
struct fuse_batch_forget_in { uint32_t count, dummy; };
struct fuse_forget_one { uint64_t nodeid, nlookup; };

/* One request slot: its readable part (header + op struct + name, one descriptor), its writable reply
 * (header + reply struct, one descriptor) and its data buffer (WRITE source / READ destination). */
struct slot {
    struct { struct fuse_in_header h; uint8_t arg[96]; } req __attribute__((aligned(8)));
    struct { struct fuse_out_header h; uint8_t arg[sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)]; }
        rep __attribute__((aligned(8)));
    uint8_t *data;
    int64_t item;         /* chunk or file index of the request in flight */
    int stage;            /* phase-specific: which request of the item is in flight */
    uint64_t fh;
};

static struct virtio_dev dev;
static struct slot slots[MAX_DEPTH];
static struct slot *by_head[VQ_SIZE];
static uint64_t timeout_ms, next_unique = 1;
static int depth;
static uint32_t chunk;
static uint64_t total_bytes, nchunks, nfiles;
static uint64_t *nodes;                 /* node id of each file (from CREATE) */
static uint64_t dat_node, dat_fh, dir_node;
static int64_t next_item;               /* next chunk / file to start */
static int pending_notify;

static __attribute__((noreturn)) void failf(const char *what, int64_t v) {
    printf_lite("FAIL: %s %ld\n", what, v);
    exit_status(1);
}

static uint32_t put_name(uint8_t *p, const char *s) {
    uint32_t n = 0;
    while (s[n]) { p[n] = (uint8_t)s[n]; n++; }
    p[n] = 0;
    return n + 1;
}

/* "f<index>" + NUL into p; returns the length with the NUL */
static uint32_t put_file_name(uint8_t *p, uint64_t i) {
    char d[20]; int n = 0;
    do { d[n++] = (char)('0' + i % 10); i /= 10; } while (i);
    p[0] = 'f';
    for (int k = 0; k < n; k++) p[1 + k] = (uint8_t)d[n - 1 - k];
    p[1 + n] = 0;
    return (uint32_t)n + 2;
}

/* Queues the slot's request (its op struct and name already in req.arg, arglen bytes) on queue q.
 * data: READ destination (writable) or WRITE source (readable) of datalen bytes, else 0.
 * replen: bytes of reply struct wanted after the out header; -1: no reply room at all (FORGET). */
static void submit(struct slot *s, int q, uint32_t opcode, uint64_t nodeid, uint32_t arglen,
                   const void *data, uint32_t datalen, int data_writable, int replen) {
    struct fuse_in_header *h = &s->req.h;
    h->len = (uint32_t)sizeof *h + arglen + (data_writable ? 0 : datalen);
    h->opcode = opcode;
    h->unique = next_unique++;
    h->nodeid = nodeid;
    h->uid = 0; h->gid = 0; h->pid = 1; h->padding = 0;
    struct vbuf b[3]; int n = 0;
    b[n++] = (struct vbuf){ &s->req, (uint32_t)sizeof *h + arglen, 0 };
    if (datalen && !data_writable) b[n++] = (struct vbuf){ (void *)data, datalen, 0 };
    if (replen >= 0) b[n++] = (struct vbuf){ &s->rep, (uint32_t)sizeof s->rep.h + (uint32_t)replen, 1 };
    if (datalen && data_writable) b[n++] = (struct vbuf){ (void *)data, datalen, 1 };
    int head = virtio_add(&dev, q, b, n);
    if (head < 0) failf("queue full, descriptors wanted", n);
    by_head[head] = s;
    pending_notify |= 1 << q;
}

static void notify_pending(void) {
    for (int q = 0; q < 2; q++)
        if (pending_notify & (1 << q)) virtio_notify(&dev, q);
    pending_notify = 0;
}

/* Waits for the next completion on queue q; returns its slot with the used length in *len.
 * Checks that the reply belongs to the request (unique) and that its length is the used length. */
static struct slot *complete(int q, uint32_t *len, int expect_reply) {
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, q, &e, timeout_ms);
    if (err) { printf_lite("FAIL: waiting for a completion: %s\n", err); exit_status(1); }
    struct slot *s = by_head[e.id];
    if (!s) failf("completion for an unknown head", e.id);
    by_head[e.id] = 0;
    if (expect_reply) {
        if (s->rep.h.unique != s->req.h.unique) failf("reply unique differs, opcode", s->req.h.opcode);
        if (s->rep.h.len != e.len || e.len < sizeof s->rep.h) failf("reply len is not the used len, opcode",
                                                                     s->req.h.opcode);
    } else if (e.len != 0) {
        failf("no-reply request came back with bytes", e.len);
    }
    *len = e.len;
    return s;
}

/* One request at a time on slot 0 (set-up steps of the phases); returns the FUSE error. */
static int32_t one(uint32_t opcode, uint64_t nodeid, uint32_t arglen, int replen) {
    submit(&slots[0], 1, opcode, nodeid, arglen, 0, 0, 0, replen);
    notify_pending();
    uint32_t len;
    complete(1, &len, 1);
    return slots[0].rep.h.error;
}

/* A phase step: called with first=1 to start a slot, else after the slot's request completed
 * (err = the FUSE error, len = used length). Queues the slot's next request and returns 1,
 * or returns 0 when the slot has nothing left to do. */
typedef int (*step_fn)(struct slot *s, int first, int32_t err, uint32_t len);

static void pipeline(step_fn step) {
    int inflight = 0;
    next_item = 0;
    for (int i = 0; i < depth; i++) { slots[i].stage = 0; inflight += step(&slots[i], 1, 0, 0); }
    notify_pending();
    while (inflight) {
        uint32_t len;
        struct slot *s = complete(1, &len, 1);
        inflight--;
        inflight += step(s, 0, s->rep.h.error, len);
        /* take every completion already there before kicking the device once for all the new requests */
        if (dev.vq[1].used->idx == dev.vq[1].last_used) notify_pending();
    }
    notify_pending();
}

/* ---- seq-write / seq-read ---- */

static uint32_t chunk_len(uint64_t k) {
    uint64_t off = k * chunk;
    return total_bytes - off < chunk ? (uint32_t)(total_bytes - off) : chunk;
}

static int write_step(struct slot *s, int first, int32_t err, uint32_t len) {
    if (!first) {
        uint32_t want = chunk_len((uint64_t)s->item);
        struct fuse_write_out *wo = (struct fuse_write_out *)s->rep.arg;
        if (err) failf("WRITE error", err);
        if (len != sizeof s->rep.h + sizeof *wo || wo->size != want) failf("WRITE wrote", wo->size);
    }
    if ((uint64_t)next_item >= nchunks) return 0;
    uint64_t k = (uint64_t)next_item++;
    s->item = (int64_t)k;
    *(volatile uint64_t *)s->data = STAMP(k);
    struct fuse_rw_in wi = { dat_fh, k * chunk, chunk_len(k), 0, 0, O_WRONLY, 0 };
    memcpy(s->req.arg, &wi, sizeof wi);
    submit(s, 1, FUSE_WRITE, dat_node, sizeof wi, s->data, chunk_len(k), 0, sizeof(struct fuse_write_out));
    return 1;
}

static int read_step(struct slot *s, int first, int32_t err, uint32_t len) {
    if (!first) {
        uint64_t k = (uint64_t)s->item;
        uint32_t want = chunk_len(k);
        if (err) failf("READ error", err);
        if (len != sizeof s->rep.h + want) failf("READ returned bytes", (int64_t)len - (int64_t)sizeof s->rep.h);
        if (*(volatile uint64_t *)s->data != STAMP(k)) failf("READ data: wrong stamp in chunk", (int64_t)k);
        uint32_t last = (want - 1) / PAGE;
        if (last && *(volatile uint64_t *)(s->data + (uint64_t)last * PAGE) != PAGE_PAT(last))
            failf("READ data: wrong page pattern in chunk", (int64_t)k);
    }
    if ((uint64_t)next_item >= nchunks) return 0;
    uint64_t k = (uint64_t)next_item++;
    s->item = (int64_t)k;
    uint32_t want = chunk_len(k), last = (want - 1) / PAGE;
    *(volatile uint64_t *)s->data = 0;                    /* so that the check sees this READ's data */
    *(volatile uint64_t *)(s->data + (uint64_t)last * PAGE) = 0;
    struct fuse_rw_in ri = { dat_fh, k * chunk, want, 0, 0, O_RDONLY, 0 };
    memcpy(s->req.arg, &ri, sizeof ri);
    submit(s, 1, FUSE_READ, dat_node, sizeof ri, s->data, want, 1, 0);
    return 1;
}

/* ---- create / stat / unlink ---- */

static int create_step(struct slot *s, int first, int32_t err, uint32_t len) {
    (void)len;
    if (!first && s->stage == 1) {                         /* CREATE done: RELEASE it */
        if (err) failf("CREATE error", err);
        struct fuse_entry_out *eo = (struct fuse_entry_out *)s->rep.arg;
        struct fuse_open_out *oo = (struct fuse_open_out *)(s->rep.arg + sizeof *eo);
        if (eo->nodeid <= ROOT_ID) failf("CREATE nodeid", (int64_t)eo->nodeid);
        nodes[s->item] = eo->nodeid;
        struct fuse_release_in rl = { oo->fh, O_WRONLY, 0, 0 };
        memcpy(s->req.arg, &rl, sizeof rl);
        s->stage = 2;
        submit(s, 1, FUSE_RELEASE, eo->nodeid, sizeof rl, 0, 0, 0, 0);
        return 1;
    }
    if (!first && err) failf("RELEASE error", err);
    if ((uint64_t)next_item >= nfiles) return 0;
    s->item = next_item++;
    struct fuse_create_in ci = { O_WRONLY | O_CREAT | O_EXCL, 0100644, 022, 0 };
    memcpy(s->req.arg, &ci, sizeof ci);
    uint32_t n = put_file_name(s->req.arg + sizeof ci, (uint64_t)s->item);
    s->stage = 1;
    submit(s, 1, FUSE_CREATE, dir_node, sizeof ci + n, 0, 0, 0,
           sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
    return 1;
}

static int stat_step(struct slot *s, int first, int32_t err, uint32_t len) {
    (void)len;
    if (!first) {
        struct fuse_entry_out *eo = (struct fuse_entry_out *)s->rep.arg;
        if (err) failf("LOOKUP error", err);
        if (eo->nodeid != nodes[s->item]) failf("LOOKUP gave another node for file", s->item);
        if ((eo->attr.mode & S_IFMT) != S_IFREG || eo->attr.size != 0) failf("LOOKUP attributes of file", s->item);
    }
    if ((uint64_t)next_item >= nfiles) return 0;
    s->item = next_item++;
    uint32_t n = put_file_name(s->req.arg, (uint64_t)s->item);
    submit(s, 1, FUSE_LOOKUP, dir_node, n, 0, 0, 0, sizeof(struct fuse_entry_out));
    return 1;
}

static int unlink_step(struct slot *s, int first, int32_t err, uint32_t len) {
    (void)len;
    if (!first && err) failf("UNLINK error", err);
    if ((uint64_t)next_item >= nfiles) return 0;
    s->item = next_item++;
    uint32_t n = put_file_name(s->req.arg, (uint64_t)s->item);
    submit(s, 1, FUSE_UNLINK, dir_node, n, 0, 0, 0, 0);
    return 1;
}

static void phase_start(const char *name) { printf_lite("PHASE %s start\n", name); }
static void phase_done(const char *name, uint64_t ops, uint64_t bytes) {
    printf_lite("PHASE %s done %lu %lu\n", name, ops, bytes);
}

/* [lo, hi) must lie in one usable RAM range of the e820 map */
static int in_ram(uint64_t lo, uint64_t hi) {
    for (int i = 0; i < e820_count(); i++) {
        const struct e820_entry *e = e820_get(i);
        if (e->type == 1 && e->addr <= lo && hi <= e->addr + e->size) return 1;
    }
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 30000);
    uint64_t mib = cmdline_u64("jkrun.fsbench.mib=", 64);
    nfiles = cmdline_u64("jkrun.fsbench.files=", 1000);
    depth = (int)cmdline_u64("jkrun.fsbench.depth=", 4);
    uint64_t chunk_kib = cmdline_u64("jkrun.fsbench.chunk_kib=", 0);
    if (depth < 1 || depth > MAX_DEPTH) failf("jkrun.fsbench.depth must be 1..5, got", depth);
    total_bytes = mib << 20;

    uintptr_t base; int irq;
    if (virtio_find(0, &base, &irq)) fail("no virtio device");
    printf_lite("VIRTIO 0x%lx irq %d\n", (uint64_t)base, irq);
    const char *err = virtio_init(&dev, base, irq, 26, 0);
    if (!err) err = virtio_setup_queue(&dev, 0);
    if (!err) err = virtio_setup_queue(&dev, 1);
    if (!err) err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);

    /* ---- init ---- */
    phase_start("init");
    struct fuse_init_in ii = { 7, 31, 1u << 20, FUSE_BIG_WRITES | FUSE_MAX_PAGES };
    memcpy(slots[0].req.arg, &ii, sizeof ii);
    int32_t r = one(FUSE_INIT, 0, sizeof ii, sizeof(struct fuse_init_out));
    struct fuse_init_out *io = (struct fuse_init_out *)slots[0].rep.arg;
    if (r) failf("INIT error", r);
    if (io->major != 7 || io->minor < 27) failf("INIT minor", io->minor);
    phase_done("init", 1, 0);
    chunk = io->max_write;
    if ((io->flags & FUSE_MAX_PAGES) && io->max_pages && (uint64_t)io->max_pages * PAGE < chunk)
        chunk = (uint32_t)io->max_pages * PAGE;
    if (chunk_kib && chunk_kib * 1024 < chunk) chunk = (uint32_t)(chunk_kib * 1024);
    if (chunk < PAGE) failf("max_write below 4096:", chunk);
    chunk &= ~(uint32_t)(PAGE - 1);
    printf_lite("FUSE 7.%u max_write %u max_pages %u chunk %u depth %d\n", io->minor, io->max_write,
                (io->flags & FUSE_MAX_PAGES) ? io->max_pages : 0, chunk, depth);
    nchunks = (total_bytes + chunk - 1) / chunk;

    /* buffers: depth data buffers of one chunk, then the node ids, then a BATCH_FORGET request */
    uint64_t forget_bytes = sizeof(struct fuse_in_header) + sizeof(struct fuse_batch_forget_in)
                            + FORGET_BATCH * sizeof(struct fuse_forget_one);
    uint64_t end = BUF_BASE + (uint64_t)depth * chunk + nfiles * 8 + forget_bytes;
    if (!in_ram(BUF_BASE, end)) failf("not enough RAM for the buffers; need up to", (int64_t)end);
    for (int i = 0; i < depth; i++) {
        slots[i].data = (uint8_t *)(BUF_BASE + (uint64_t)i * chunk);
        *(volatile uint64_t *)slots[i].data = 0;
        for (uint32_t p = 1; p < chunk / PAGE; p++) *(volatile uint64_t *)(slots[i].data + (uint64_t)p * PAGE) = PAGE_PAT(p);
    }
    nodes = (uint64_t *)(BUF_BASE + (uint64_t)depth * chunk);
    uint8_t *forget_req = (uint8_t *)(nodes + nfiles);

    /* ---- seq-write ---- */
    phase_start("seq-write");
    struct fuse_create_in ci = { O_WRONLY | O_CREAT | O_TRUNC, 0100644, 022, 0 };
    memcpy(slots[0].req.arg, &ci, sizeof ci);
    uint32_t n = put_name(slots[0].req.arg + sizeof ci, "fsbench.dat");
    r = one(FUSE_CREATE, ROOT_ID, sizeof ci + n, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
    if (r) failf("CREATE fsbench.dat error", r);
    dat_node = ((struct fuse_entry_out *)slots[0].rep.arg)->nodeid;
    dat_fh = ((struct fuse_open_out *)(slots[0].rep.arg + sizeof(struct fuse_entry_out)))->fh;
    pipeline(write_step);
    printf_lite("PHASE seq-write fsync\n");               /* lets the host time the FSYNC on its own */
    struct fuse_fsync_in fi = { dat_fh, FSYNC_FDATASYNC, 0 };
    memcpy(slots[0].req.arg, &fi, sizeof fi);
    r = one(FUSE_FSYNC, dat_node, sizeof fi, 0);
    if (r) failf("FSYNC error", r);
    struct fuse_release_in rl = { dat_fh, O_WRONLY, 0, 0 };
    memcpy(slots[0].req.arg, &rl, sizeof rl);
    r = one(FUSE_RELEASE, dat_node, sizeof rl, 0);
    if (r) failf("RELEASE fsbench.dat error", r);
    phase_done("seq-write", nchunks, total_bytes);

    /* ---- seq-read ---- */
    phase_start("seq-read");
    struct fuse_open_in oi = { O_RDONLY, 0 };
    memcpy(slots[0].req.arg, &oi, sizeof oi);
    r = one(FUSE_OPEN, dat_node, sizeof oi, sizeof(struct fuse_open_out));
    if (r) failf("OPEN fsbench.dat error", r);
    dat_fh = ((struct fuse_open_out *)slots[0].rep.arg)->fh;
    pipeline(read_step);
    struct fuse_release_in rl2 = { dat_fh, O_RDONLY, 0, 0 };
    memcpy(slots[0].req.arg, &rl2, sizeof rl2);
    r = one(FUSE_RELEASE, dat_node, sizeof rl2, 0);
    if (r) failf("RELEASE fsbench.dat error", r);
    phase_done("seq-read", nchunks, total_bytes);

    /* ---- create ---- */
    phase_start("create");
    struct fuse_mkdir_in mi = { 040755, 022 };
    memcpy(slots[0].req.arg, &mi, sizeof mi);
    n = put_name(slots[0].req.arg + sizeof mi, "files");
    r = one(FUSE_MKDIR, ROOT_ID, sizeof mi + n, sizeof(struct fuse_entry_out));
    if (r) failf("MKDIR files error", r);
    dir_node = ((struct fuse_entry_out *)slots[0].rep.arg)->nodeid;
    pipeline(create_step);
    phase_done("create", nfiles, 0);

    /* ---- stat ---- */
    phase_start("stat");
    pipeline(stat_step);
    phase_done("stat", nfiles, 0);

    /* ---- unlink ---- */
    phase_start("unlink");
    pipeline(unlink_step);
    phase_done("unlink", nfiles, 0);

    /* ---- cleanup (untimed): forget every node (files: CREATE + LOOKUP = 2 lookups; the data file and the
     * directory 1 each), then RMDIR the directory ---- */
    phase_start("cleanup");
    uint64_t forgotten = 0, total_nodes = nfiles + 2;
    struct slot *fs = &slots[0];
    while (forgotten < total_nodes) {
        struct fuse_in_header *h = (struct fuse_in_header *)forget_req;
        struct fuse_batch_forget_in *bi = (struct fuse_batch_forget_in *)(h + 1);
        struct fuse_forget_one *one_ = (struct fuse_forget_one *)(bi + 1);
        uint32_t cnt = 0;
        for (; cnt < FORGET_BATCH && forgotten < total_nodes; cnt++, forgotten++) {
            if (forgotten < nfiles) one_[cnt] = (struct fuse_forget_one){ nodes[forgotten], 2 };
            else one_[cnt] = (struct fuse_forget_one){ forgotten == nfiles ? dat_node : dir_node, 1 };
        }
        bi->count = cnt; bi->dummy = 0;
        h->len = (uint32_t)(sizeof *h + sizeof *bi + cnt * sizeof *one_);
        h->opcode = FUSE_BATCH_FORGET; h->unique = next_unique++; h->nodeid = 0;
        h->uid = 0; h->gid = 0; h->pid = 1; h->padding = 0;
        struct vbuf b = { forget_req, h->len, 0 };
        int head = virtio_add(&dev, 0, &b, 1);
        if (head < 0) failf("hiprio queue full", 0);
        by_head[head] = fs;
        virtio_notify(&dev, 0);
        uint32_t len;
        complete(0, &len, 0);
    }
    n = put_name(slots[0].req.arg, "files");
    r = one(FUSE_RMDIR, ROOT_ID, n, 0);
    if (r) failf("RMDIR files error", r);
    phase_done("cleanup", total_nodes, 0);

    printf_lite("IRQS %u\n", dev.irq_count);
    printf_lite("FSBENCH ok\n");
    return 0;
}
