#include "guest.h"

struct boot_params_lite *boot_params;

void bootinfo_init(struct boot_params_lite *zp) { boot_params = zp; }
int e820_count(void) { return boot_params->raw[0x1E8]; }
const struct e820_entry *e820_get(int i) { return (const struct e820_entry *)(boot_params->raw + 0x2D0 + 20 * i); }
uint64_t ram_top(void) {
    uint64_t top = 0;
    for (int i = 0; i < e820_count(); i++) {
        const struct e820_entry *e = e820_get(i);
        if (e->type == 1 && e->addr + e->size > top) top = e->addr + e->size;
    }
    return top;
}
const char *cmdline(void) {
    uint32_t p; memcpy(&p, boot_params->raw + 0x228, 4);
    return p ? (const char *)(uintptr_t)p : "";
}
/* find "key" at a word start; return pointer after it */
static const char *find_word(const char *key) {
    const char *c = cmdline(); size_t n = strlen(key);
    for (const char *p = c; *p; p++)
        if ((p == c || p[-1] == ' ') && !strncmp(p, key, n)) return p + n;
    return 0;
}
int cmdline_get(const char *key, char *buf, size_t n) {
    const char *p = find_word(key);
    if (!p) return 0;
    size_t i = 0;
    while (p[i] && p[i] != ' ' && i + 1 < n) { buf[i] = p[i]; i++; }
    buf[i] = 0;
    return 1;
}
uint64_t cmdline_u64(const char *key, uint64_t dflt) {
    const char *p = find_word(key);
    return p ? parse_u64(p, 0) : dflt;
}
int cmdline_has(const char *word) {
    const char *p = find_word(word);
    return p && (*p == ' ' || *p == 0);
}

static uint8_t sum8(const uint8_t *p, size_t n) { uint8_t s = 0; while (n--) s += *p++; return s; }

void mp_find(struct mp_info *o) {
    memset(o, 0, sizeof *o);
    o->bsp_index = -1;
    const uint8_t *fp = 0;
    for (uintptr_t a = 0x9FC00; a < 0xA0000; a += 16)
        if (!memcmp((const void *)a, "_MP_", 4)) { fp = (const uint8_t *)a; break; }
    if (!fp) { o->error = "no _MP_ floating pointer in 0x9FC00..0xA0000"; return; }
    if (fp[8] != 1 || sum8(fp, 16)) { o->error = "floating pointer checksum/length bad"; return; }
    uint32_t phys; memcpy(&phys, fp + 4, 4);
    const uint8_t *h = (const uint8_t *)(uintptr_t)phys;
    if (memcmp(h, "PCMP", 4)) { o->error = "no PCMP signature"; return; }
    uint16_t len, cnt; memcpy(&len, h + 4, 2); memcpy(&cnt, h + 34, 2);
    if (sum8(h, len)) { o->error = "config table checksum bad"; return; }
    memcpy(&o->lapic, h + 36, 4);
    const uint8_t *p = h + 44, *end = h + len;
    for (int i = 0; i < cnt && p < end; i++) {
        switch (p[0]) {
        case 0:
            if ((p[3] & 1) && o->ncpus < 64) {
                if (p[3] & 2) o->bsp_index = o->ncpus;
                o->apic_ids[o->ncpus++] = p[1];
            }
            p += 20; break;
        case 2: memcpy(&o->ioapic, p + 4, 4); p += 8; break;
        default: p += 8;
        }
    }
    o->ok = 1;
}

int mp_irq_level(int pin) {
    const uint8_t *fp = 0;
    for (uintptr_t a = 0x9FC00; a < 0xA0000; a += 16)
        if (!memcmp((const void *)a, "_MP_", 4)) { fp = (const uint8_t *)a; break; }
    if (!fp) return -1;
    uint32_t phys; memcpy(&phys, fp + 4, 4);
    const uint8_t *h = (const uint8_t *)(uintptr_t)phys;
    if (memcmp(h, "PCMP", 4)) return -1;
    uint16_t len, cnt; memcpy(&len, h + 4, 2); memcpy(&cnt, h + 34, 2);
    const uint8_t *p = h + 44, *end = h + len;
    for (int i = 0; i < cnt && p < end; i++) {
        if (p[0] == 0) { p += 20; continue; }
        if (p[0] == 3 && p[1] == 0 && p[7] == pin) {    /* mp_INT to this IOAPIC pin */
            uint16_t flags; memcpy(&flags, p + 2, 2);
            return ((flags >> 2) & 3) == 3;              /* trigger bits 3:2: 3 = level; 0 (ISA) or 1 = edge */
        }
        p += 8;
    }
    return -1;
}
