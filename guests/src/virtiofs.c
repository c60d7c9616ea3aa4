/* virtiofs: a virtio-fs (id 26) driver at the first virtio_mmio.device= of the cmdline, speaking FUSE
 * over the request queue (1) the way the Linux driver does: each request is one descriptor chain,
 * readable parts (fuse_in_header, op struct, data) then writable parts (fuse_out_header, reply), and
 * is waited for through the device interrupt.
 * Expects the share to hold "in.txt" containing exactly "hello from the host\n"; creates "out.txt"
 * with "written by the guest\n".
 * Prints "CHECK <op> ok|FAIL <detail>" per step, "VIRTIOFS ok|FAIL"; exit 0 / 1.
 * cmdline: jkrun.test.timeout_ms=<ms> (default 30000) for each wait. */
#include "guest.h"

#define IN_CONTENT "hello from the host\n"
#define OUT_CONTENT "written by the guest\n"

enum { FUSE_LOOKUP = 1, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_WRITE = 16, FUSE_RELEASE = 18,
       FUSE_FSYNC = 20, FUSE_INIT = 26, FUSE_OPENDIR = 27, FUSE_READDIR = 28, FUSE_RELEASEDIR = 29,
       FUSE_CREATE = 35 };
#define ROOT_ID 1
#define ENOENT 2
#define EINVAL 22
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_DIRECTORY 0200000

struct fuse_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid;
                        uint16_t total_extlen, padding; };
struct fuse_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct fuse_init_in { uint32_t major, minor, max_readahead, flags; };   /* 7.31 layout */
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
struct fuse_read_in { uint64_t fh, offset; uint32_t size, read_flags; uint64_t lock_owner;
                      uint32_t flags, padding; };
struct fuse_write_in { uint64_t fh, offset; uint32_t size, write_flags; uint64_t lock_owner;
                       uint32_t flags, padding; };
struct fuse_write_out { uint32_t size, padding; };
struct fuse_fsync_in { uint64_t fh; uint32_t fsync_flags, padding; };
struct fuse_release_in { uint64_t fh; uint32_t flags, release_flags; uint64_t lock_owner; };
struct fuse_dirent { uint64_t ino, off; uint32_t namelen, type; char name[]; };

static struct virtio_dev dev;
static uint64_t timeout_ms, next_unique = 1;
static int failures;

/* request/reply buffers (static: guest-physical == virtual under the identity map) */
static struct fuse_in_header in_hdr;
static uint8_t in_arg[128];
static uint8_t in_data[256];
static struct fuse_out_header out_hdr;
static uint8_t out_arg[4096] __attribute__((aligned(8)));
static uint32_t used_len;

static void check(const char *op, int ok, const char *detail, long v) {
    if (ok) printf_lite("CHECK %s ok\n", op);
    else { printf_lite("CHECK %s FAIL %s %ld\n", op, detail, v); failures++; }
}

/* Sends one request; the reply header lands in out_hdr, its body in out_arg.
 * Returns the FUSE error (0, or -errno); 1 on a transport failure (already reported). */
/* total_extlen for the next request only (8-byte units): the hostile extension cases set it. */
static uint16_t next_extlen;

static int fuse(uint32_t opcode, uint64_t nodeid, const void *arg, uint32_t arglen,
                const void *data, uint32_t datalen, uint32_t replylen) {
    memset(&in_hdr, 0, sizeof in_hdr);
    in_hdr.total_extlen = next_extlen;
    next_extlen = 0;
    in_hdr.len = (uint32_t)sizeof in_hdr + arglen + datalen;
    in_hdr.opcode = opcode;
    in_hdr.unique = next_unique++;
    in_hdr.nodeid = nodeid;
    in_hdr.pid = 1;
    if (arglen) memcpy(in_arg, arg, arglen);
    if (datalen) memcpy(in_data, data, datalen);
    memset(&out_hdr, 0xA5, sizeof out_hdr);
    memset(out_arg, 0, sizeof out_arg);
    struct vbuf b[5]; int n = 0;
    b[n++] = (struct vbuf){ &in_hdr, sizeof in_hdr, 0 };
    if (arglen) b[n++] = (struct vbuf){ in_arg, arglen, 0 };
    if (datalen) b[n++] = (struct vbuf){ in_data, datalen, 0 };
    b[n++] = (struct vbuf){ &out_hdr, sizeof out_hdr, 1 };
    if (replylen) b[n++] = (struct vbuf){ out_arg, replylen, 1 };
    int head = virtio_add(&dev, 1, b, n);
    if (head < 0) { printf_lite("CHECK transport FAIL queue full\n"); failures++; return 1; }
    virtio_notify(&dev, 1);
    struct vring_used_elem e;
    const char *err = virtio_wait_used(&dev, 1, &e, timeout_ms);
    if (err) { printf_lite("CHECK transport FAIL opcode %u: %s\n", opcode, err); failures++; return 1; }
    if (e.id != (uint32_t)head) {
        printf_lite("CHECK transport FAIL used id %u, expected %d\n", e.id, head); failures++; return 1;
    }
    if (out_hdr.unique != in_hdr.unique || out_hdr.len != e.len || out_hdr.len < sizeof out_hdr) {
        printf_lite("CHECK transport FAIL opcode %u: reply len %u used len %u unique %lx\n",
                    opcode, out_hdr.len, e.len, out_hdr.unique);
        failures++; return 1;
    }
    used_len = e.len;
    return out_hdr.error;
}

static uint32_t name_arg(uint8_t *buf, const char *name) {
    uint32_t n = (uint32_t)strlen(name) + 1;
    memcpy(buf, name, n);
    return n;
}

static uint64_t lookup(const char *opname, const char *name, int32_t *errp) {
    uint8_t nb[64];
    uint32_t n = name_arg(nb, name);
    int r = fuse(FUSE_LOOKUP, ROOT_ID, nb, n, 0, 0, sizeof(struct fuse_entry_out));
    *errp = r;
    if (r) return 0;
    struct fuse_entry_out *eo = (struct fuse_entry_out *)out_arg;
    (void)opname;
    return eo->nodeid;
}

static int dir_has(const uint8_t *buf, uint32_t len, const char *name) {
    uint32_t off = 0, nl = (uint32_t)strlen(name);
    while (off + sizeof(struct fuse_dirent) <= len) {
        const struct fuse_dirent *d = (const struct fuse_dirent *)(buf + off);
        if (d->namelen == nl && !memcmp(d->name, name, nl)) return 1;
        off += (uint32_t)((sizeof(struct fuse_dirent) + d->namelen + 7) & ~7u);
    }
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms=", 30000);
    uintptr_t base; int irq;
    if (virtio_find(0, &base, &irq)) fail("no virtio device");
    printf_lite("VIRTIO 0x%lx irq %d\n", (uint64_t)base, irq);
    const char *err = virtio_init(&dev, base, irq, 26, 0);
    if (!err) err = virtio_setup_queue(&dev, 0);
    if (!err) err = virtio_setup_queue(&dev, 1);
    if (err) fail(err);
    /* config space at 0x100: tag[36], num_request_queues */
    char tag[37];
    for (int i = 0; i < 36; i += 4) { uint32_t w = readl(base + 0x100 + i); memcpy(tag + i, &w, 4); }
    tag[36] = 0;
    uint32_t nrq = readl(base + 0x100 + 36);
    printf_lite("TAG %s queues %u\n", tag, nrq);
    check("config", nrq >= 1 && tag[0], "num_request_queues", nrq);
    err = virtio_driver_ok(&dev);
    if (err) fail(err);
    virtio_enable_irq(&dev);
    printf_lite("FEATURES 0x%lx\n", dev.driver_features);

    int r;
    /* INIT 7.31 */
    struct fuse_init_in ii = { 7, 31, 65536, 0 };
    r = fuse(FUSE_INIT, 0, &ii, sizeof ii, 0, 0, sizeof(struct fuse_init_out));
    struct fuse_init_out *io = (struct fuse_init_out *)out_arg;
    if (r == 1) goto done;
    check("init", r == 0 && io->major == 7 && io->minor >= 27 && io->minor <= 31, "error/minor",
          r ? r : (long)io->minor);
    if (r) goto done;
    printf_lite("FUSE %u.%u max_write %u\n", io->major, io->minor, io->max_write);

    /* LOOKUP in.txt */
    int32_t e;
    uint64_t in_node = lookup("lookup", "in.txt", &e);
    if (e == 1) goto done;
    struct fuse_entry_out *eo = (struct fuse_entry_out *)out_arg;
    check("lookup", e == 0 && in_node > 1 && eo->attr.size == sizeof IN_CONTENT - 1,
          "error/size", e ? e : (long)eo->attr.size);

    /* OPEN + READ */
    struct fuse_open_in oi = { O_RDONLY, 0 };
    r = fuse(FUSE_OPEN, in_node, &oi, sizeof oi, 0, 0, sizeof(struct fuse_open_out));
    if (r == 1) goto done;
    uint64_t in_fh = ((struct fuse_open_out *)out_arg)->fh;
    check("open", r == 0, "error", r);
    struct fuse_read_in ri = { in_fh, 0, 256, 0, 0, 0, 0 };
    r = fuse(FUSE_READ, in_node, &ri, sizeof ri, 0, 0, 256);
    if (r == 1) goto done;
    uint32_t got = used_len - (uint32_t)sizeof out_hdr;
    check("read", r == 0 && got == sizeof IN_CONTENT - 1 && !memcmp(out_arg, IN_CONTENT, got),
          "error/bytes", r ? r : (long)got);
    struct fuse_release_in rl = { in_fh, 0, 0, 0 };
    r = fuse(FUSE_RELEASE, in_node, &rl, sizeof rl, 0, 0, 0);
    if (r == 1) goto done;

    /* CREATE out.txt */
    uint8_t cb[16 + 16];
    struct fuse_create_in ci = { O_WRONLY | O_CREAT, 0100644, 022, 0 };
    memcpy(cb, &ci, sizeof ci);
    uint32_t cn = (uint32_t)sizeof ci + name_arg(cb + sizeof ci, "out.txt");
    r = fuse(FUSE_CREATE, ROOT_ID, cb, cn, 0, 0, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
    if (r == 1) goto done;
    uint64_t out_node = ((struct fuse_entry_out *)out_arg)->nodeid;
    uint64_t out_fh = ((struct fuse_open_out *)(out_arg + sizeof(struct fuse_entry_out)))->fh;
    check("create", r == 0 && out_node > 1 && out_node != in_node, "error/nodeid", r ? r : (long)out_node);

    /* WRITE */
    struct fuse_write_in wi = { out_fh, 0, sizeof OUT_CONTENT - 1, 0, 0, 0, 0 };
    r = fuse(FUSE_WRITE, out_node, &wi, sizeof wi, OUT_CONTENT, sizeof OUT_CONTENT - 1,
             sizeof(struct fuse_write_out));
    if (r == 1) goto done;
    uint32_t wrote = ((struct fuse_write_out *)out_arg)->size;
    check("write", r == 0 && wrote == sizeof OUT_CONTENT - 1, "error/size", r ? r : (long)wrote);

    /* FSYNC */
    struct fuse_fsync_in fi = { out_fh, 0, 0 };
    r = fuse(FUSE_FSYNC, out_node, &fi, sizeof fi, 0, 0, 0);
    if (r == 1) goto done;
    check("fsync", r == 0, "error", r);

    /* RELEASE */
    struct fuse_release_in rel = { out_fh, O_WRONLY, 0, 0 };
    r = fuse(FUSE_RELEASE, out_node, &rel, sizeof rel, 0, 0, 0);
    if (r == 1) goto done;
    check("release", r == 0, "error", r);

    /* OPENDIR + READDIR root */
    struct fuse_open_in od = { O_RDONLY | O_DIRECTORY, 0 };
    r = fuse(FUSE_OPENDIR, ROOT_ID, &od, sizeof od, 0, 0, sizeof(struct fuse_open_out));
    if (r == 1) goto done;
    uint64_t dfh = ((struct fuse_open_out *)out_arg)->fh;
    check("opendir", r == 0, "error", r);
    struct fuse_read_in rd = { dfh, 0, 4096, 0, 0, 0, 0 };
    r = fuse(FUSE_READDIR, ROOT_ID, &rd, sizeof rd, 0, 0, 4096);
    if (r == 1) goto done;
    uint32_t dlen = used_len - (uint32_t)sizeof out_hdr;
    int has_in = dir_has(out_arg, dlen, "in.txt"), has_out = dir_has(out_arg, dlen, "out.txt");
    check("readdir", r == 0 && has_in && has_out, "error/found", r ? r : has_in * 2 + has_out);
    struct fuse_release_in rd_rel = { dfh, 0, 0, 0 };
    r = fuse(FUSE_RELEASEDIR, ROOT_ID, &rd_rel, sizeof rd_rel, 0, 0, 0);
    if (r == 1) goto done;

    /* LOOKUP nonexistent -> -ENOENT */
    lookup("lookup_missing", "nonexistent", &e);
    if (e == 1) goto done;
    check("lookup_missing", e == -ENOENT, "error", e);

    /* LOOKUP ".." in the root -> an error (no escaping the share) */
    lookup("lookup_dotdot", "..", &e);
    if (e == 1) goto done;
    check("lookup_dotdot", e < 0, "error", e);

    /* Hostile request extensions (fuse_in_header.total_extlen): a supplementary-group extension this INIT never
     * negotiated (FUSE_CREATE_SUPP_GROUP), and a total_extlen longer than the request's body: both EINVAL, and the
     * device serves the next request as before. */
    uint8_t nb[16];
    uint32_t nlen = name_arg(nb, "in.txt");
    uint32_t ext[4] = { 16, 32 /* FUSE_EXT_GROUPS */, 1, 1000 };
    next_extlen = 2;
    r = fuse(FUSE_LOOKUP, ROOT_ID, nb, nlen, ext, sizeof ext, sizeof(struct fuse_entry_out));
    if (r == 1) goto done;
    check("ext_unagreed", r == -EINVAL, "error", r);
    next_extlen = 4;
    r = fuse(FUSE_LOOKUP, ROOT_ID, nb, nlen, 0, 0, sizeof(struct fuse_entry_out));
    if (r == 1) goto done;
    check("ext_past_body", r == -EINVAL, "error", r);
    uint64_t again = lookup("ext_after", "in.txt", &e);
    if (e == 1) goto done;
    check("ext_after", e == 0 && again == in_node, "error/nodeid", e ? e : (long)again);

done:
    printf_lite("IRQS %u\n", dev.irq_count);
    if (failures) { printf_lite("VIRTIOFS FAIL %d\n", failures); return 1; }
    printf_lite("VIRTIOFS ok\n");
    return 0;
}
