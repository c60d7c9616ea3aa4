/* ioapic: a hostile driver of the VMM's IOAPIC (split irqchip), with a 16550 UART on COM1 (IRQ 4) as the line it
 * drives and its report lines on that UART (a serial console: the VMM has no debug port at 0x3F8 then).
 *
 * The UART's interrupt output is a level: with IER.THRI set and OUT2 on, it is high until the driver reads IIR (or
 * clears IER). That makes the IOAPIC's level logic observable from inside:
 *   version        the version register reads 0x00170020 (24 entries, version 0x20), every entry starts masked
 *   readonly       Remote IRR and Delivery Status written as 1 read back as 0 on an idle pin
 *   level_eoi      pin 4 level-triggered: a handler that does not read IIR gets the interrupt again after each EOI
 *                  (the line is still high), until the 5th clears IER: 5 deliveries (6 where the EOI reaches the
 *                  IOAPIC before the handler runs: kvm-pvm reports a level vector's EOI to user space when it
 *                  injects the interrupt, so the 6th was on its way when the 5th cleared IER)
  *              (INFO: whether the entry's Remote IRR read 1 inside the first handler, before its EOI)
 *   masked_level   masked while the line rises: nothing; unmasked with the line still high: one interrupt (two
 *                  where the EOI reaches the IOAPIC early, as with level_eoi)
 *   masked_in_service  the handler masks the level pin before its EOI, as Linux does when it moves an IRQ: the
 *                  EOI still clears Remote IRR, and the unmask with the line still high delivers again
 *   masked_edge    pin 4 edge-triggered: a rising edge while masked is lost (nothing at the unmask)
 *   edge           edge-triggered: one interrupt per rising edge, none while the line stays high
 *   eoi_register   level again, the handler ends the interrupt through the IOAPIC's EOI register as well as the
 *                  LAPIC's: still delivered again while high (4 wanted, 5 accepted as above)
 *   undeliverable  ExtINT, the reserved delivery modes 3 and 6, logical destination 0 (fixed and lowest
 *                  priority): the line high for ~20 ms delivers nothing to any vector
 *   garbage        20000 writes of random values and widths to IOREGSEL, IOWIN, the EOI register and undecoded
 *                  offsets of the 4 KiB window (values that would stop this CPU are tamed: vectors below 0x20, the
 *                  exceptions', are raised to 0x20 and INIT, SMI and NMI become fixed), with interrupts disabled and
 *                  the line toggling between them; then every entry is reprogrammed masked and what was let through
 *                  is taken
 *   after          level_eoi again: the IOAPIC still works
 * cmdline: jkrun.test.timeout_ms=<ms> (5000) for each wait
 * Prints "CHECK <name> ok|FAIL <why> <value>", "INFO ...", "IOAPIC ok <n>" or "IOAPIC FAIL <k>"; exit 0 / 1. */
#include "guest.h"

#define COM1 0x3F8
#define IER 1
#define IIR 2
#define MCR 4
#define LSR 5
#define LSR_TEMT 0x40
#define IER_THRI 0x02
#define MCR_OUT2 0x08
#define PIN 4
#define VECTOR 0x44
#define REDIR(p) (0x10 + 2 * (p))
#define LEVEL (1u << 15)
#define MASKED (1u << 16)
#define REMOTE_IRR (1u << 14)
#define TIMER 0xF0

static uint64_t timeout_ms;
static int failures, checks;
static volatile uint32_t hits[256];
static volatile uint32_t handled, limit, remote_seen;
static volatile int read_iir, ioapic_eoi, mask_first;

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

static uint32_t ioapic_read(uint32_t reg) { writel(IOAPIC_BASE, reg); return readl(IOAPIC_BASE + 0x10); }
static void ioapic_write(uint32_t reg, uint32_t v) { writel(IOAPIC_BASE, reg); writel(IOAPIC_BASE + 0x10, v); }
static void program(uint32_t low, uint32_t dest) { ioapic_write(REDIR(PIN) + 1, dest << 24); ioapic_write(REDIR(PIN), low); }

static void line(int high) {                       /* IER.THRI with THR empty: the UART's output is up */
    outb(COM1 + IER, high ? IER_THRI : 0);
    if (!high) (void)inb(COM1 + IIR);
}

static void uart_irq(int v) {
    hits[v]++;
    handled++;
    if (handled == 1) remote_seen = ioapic_read(REDIR(PIN)) & REMOTE_IRR;
    if (handled == 1 && mask_first) ioapic_write(REDIR(PIN), VECTOR | LEVEL | MASKED);  /* as ioapic_ack_level */
    if (read_iir) (void)inb(COM1 + IIR);          /* acknowledges THRE: the line falls */
    if (handled >= limit) outb(COM1 + IER, 0);    /* enough: the line falls */
    if (ioapic_eoi) writel(IOAPIC_BASE + 0x40, v);
}

static void any_irq(int v) { hits[v]++; }

/* interrupts other than the LAPIC timer's */
static uint32_t stray_hits(void) { uint32_t n = 0; for (int v = 0; v < 256; v++) if (v != TIMER) n += hits[v]; return n; }
/* before each case: the report lines printed so far sent (LSR.TEMT), so the UART's THRE does not rise again on its
 * own when its transmitter empties during the case, and the counts zeroed */
static void clear_hits(void) {
    for (uint64_t t0 = rdtsc(); !(inb(COM1 + LSR) & LSR_TEMT) && rdtsc() - t0 < 10000000000ULL; ) pause();
    (void)inb(COM1 + IIR);
    for (int v = 0; v < 256; v++) hits[v] = 0;
    handled = 0; remote_seen = 0;
}

/* sti;hlt for ms (the LAPIC timer ticks every 10 ms), or until `handled` reaches n */
static void wait_for(uint32_t n, uint64_t ms) {
    uint64_t t0 = lapic_ticks;
    while (handled < n && lapic_ticks - t0 < ms / TICK_MS + 1) sti_hlt();
    cli();
}
static void settle(uint64_t ms) { wait_for(~0u, ms); }

/* the line down, the pin masked, and whatever was already on its way taken, before the next case or a report line
 * (printing writes THR, which would raise THRE again) */
static void quiesce(void) { line(0); program(MASKED, 0); settle(30); }

static void level_eoi(const char *name) {
    clear_hits(); read_iir = 0; ioapic_eoi = 0; limit = 5;
    program(VECTOR | LEVEL, lapic_id());
    line(1);
    wait_for(5, timeout_ms);
    settle(30);
    uint32_t got = handled, seen = remote_seen, vec = hits[VECTOR];
    quiesce();
    check(name, (got == 5 || got == 6) && vec == got, "deliveries while high (5 wanted)", got);
    printf_lite("INFO %s: %u deliveries, Remote IRR %u in the first handler\n", name, got, seen ? 1 : 0);
}

static uint64_t lcg = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL; return lcg >> 17; }

int guest_main(struct boot_params_lite *zp) {
    guest_cpu_init(zp);
    timeout_ms = cmdline_u64("jkrun.test.timeout_ms", 5000);
    for (int v = 0x20; v < 0xFF; v++) irq_register(v, any_irq);
    irq_register(VECTOR, uart_irq);
    lapic_timer_periodic(TIMER, TICK_MS * 1000000u);
    outb(COM1 + 3, 0x03);                          /* 8N1, DLAB clear */
    outb(COM1 + IER, 0);
    outb(COM1 + MCR, MCR_OUT2);                    /* OUT2 gates the UART's interrupt onto the line */
    (void)inb(COM1 + IIR);

    uint32_t ver = ioapic_read(1);
    int masked = 1;
    for (int p = 0; p < IOAPIC_PINS; p++) masked &= (ioapic_read(REDIR(p)) & MASKED) != 0;
    check("version", ver == 0x00170020 && masked, "version / all masked", ver);

    ioapic_write(REDIR(9), MASKED | REMOTE_IRR | (1u << 12) | LEVEL | 0x39);
    uint32_t ro = ioapic_read(REDIR(9));
    check("readonly", (ro & (REMOTE_IRR | (1u << 12))) == 0 && (ro & 0x1FFFF) == (MASKED | LEVEL | 0x39), "entry", ro);
    ioapic_write(REDIR(9), MASKED);

    level_eoi("level_eoi");

    /* masked_level: nothing while masked; the unmask delivers the line that is still high, once (the handler clears
     * IER: the UART's THRE would otherwise rise again whenever its host side looks at the empty transmitter) */
    clear_hits(); read_iir = 1; limit = 1;
    program(VECTOR | LEVEL | MASKED, lapic_id());
    line(1);
    settle(30);
    uint32_t before = stray_hits();
    program(VECTOR | LEVEL, lapic_id());
    wait_for(1, timeout_ms);
    settle(30);
    uint32_t after = handled;
    quiesce();
    check("masked_level", before == 0 && (after == 1 || after == 2), "deliveries masked / after the unmask",
          (uint64_t)before << 32 | after);

    /* masked_edge: a rising edge while masked is lost */
    clear_hits();
    program(VECTOR | MASKED, lapic_id());
    line(1);
    settle(20);
    program(VECTOR, lapic_id());
    settle(30);
    after = handled;
    quiesce();
    check("masked_edge", after == 0, "deliveries", after);

    /* edge: the line held high is one interrupt; a new rising edge one more */
    clear_hits(); read_iir = 0; limit = 100;
    program(VECTOR, lapic_id());
    line(1);
    wait_for(1, timeout_ms);
    settle(30);
    uint32_t first = handled;
    line(0);
    line(1);
    wait_for(2, timeout_ms);
    settle(30);
    after = handled;
    quiesce();
    check("edge", first == 1 && after == 2, "deliveries (1, then 2)", (uint64_t)first << 32 | after);

    /* masked_in_service: the handler masks the pin before its EOI (Linux's ioapic_ack_level when the IRQ moves); the
     * EOI must still end it (Remote IRR 0), and the unmask with the line high delivers again */
    clear_hits(); read_iir = 0; ioapic_eoi = 0; limit = 2; mask_first = 1;
    program(VECTOR | LEVEL, lapic_id());
    line(1);
    wait_for(1, timeout_ms);
    settle(30);
    uint32_t irr = ioapic_read(REDIR(PIN)) & REMOTE_IRR, mid = handled;
    ioapic_write(REDIR(PIN), VECTOR | LEVEL);
    wait_for(2, timeout_ms);
    settle(30);
    after = handled;
    mask_first = 0;
    quiesce();
    check("masked_in_service", irr == 0 && after == 2, "Remote IRR after the EOI while masked / deliveries",
          (uint64_t)irr << 32 | after);
    printf_lite("INFO masked_in_service: %u deliveries before the unmask\n", mid);

    /* eoi_register */
    clear_hits(); read_iir = 0; ioapic_eoi = 1; limit = 4;
    program(VECTOR | LEVEL, lapic_id());
    line(1);
    wait_for(4, timeout_ms);
    settle(30);
    after = handled;
    ioapic_eoi = 0;
    quiesce();
    check("eoi_register", after == 4 || after == 5, "deliveries (4 wanted)", after);

    /* undeliverable */
    static const struct { uint32_t low; int logical; } bad[] = {
        { 7u << 8 | VECTOR | LEVEL, 0 }, { 7u << 8 | VECTOR, 0 }, { 3u << 8 | VECTOR | LEVEL, 0 },
        { 6u << 8 | VECTOR, 0 }, { 1u << 11 | VECTOR | LEVEL, 1 }, { 1u << 11 | 1u << 8 | VECTOR, 1 },
    };
    clear_hits();
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        program(bad[i].low, bad[i].logical ? 0 : lapic_id());
        line(1);
        settle(20);
        quiesce();
    }
    after = stray_hits();
    check("undeliverable", after == 0, "interrupts delivered", after);

    /* garbage, with interrupts disabled throughout */
    clear_hits();
    static const uint32_t offs[] = { 0x00, 0x00, 0x10, 0x10, 0x10, 0x40, 0x04, 0x14, 0x20, 0x44, 0x80, 0xFF0, 0xFFC };
    for (int i = 0; i < 20000; i++) {
        uint64_t r = rnd();
        uintptr_t a = IOAPIC_BASE + offs[r % (sizeof offs / sizeof offs[0])];
        uint32_t v = (uint32_t)rnd();
        if ((v & 0xFF) < 0x20) v |= 0x20;
        uint32_t mode = (v >> 8) & 7;
        if (mode == 2 || mode == 4 || mode == 5) v &= ~0x700u;
        switch ((r >> 8) & 3) {
        case 0: *(volatile uint8_t *)a = (uint8_t)v; break;
        case 1: *(volatile uint16_t *)a = (uint16_t)v; break;
        case 2: writel(a, v); break;
        default: (void)readl(a); break;
        }
        if ((r >> 12) % 64 == 0) line((r >> 20) & 1);
    }
    line(0);
    for (int p = 0; p < IOAPIC_PINS; p++) { ioapic_write(REDIR(p) + 1, 0); ioapic_write(REDIR(p), MASKED); }
    settle(50);
    after = stray_hits();
    uint32_t ver2 = ioapic_read(1);
    printf_lite("INFO garbage: %u interrupts let through while the entries held random values\n", after);
    check("garbage", ver2 == 0x00170020, "version after", ver2);

    level_eoi("after");

    if (failures) { printf_lite("IOAPIC FAIL %d\n", failures); return 1; }
    printf_lite("IOAPIC ok %d\n", checks);
    return 0;
}
