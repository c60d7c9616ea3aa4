/* serial: a 16550A UART on COM1 (I/O 0x3F8, ISA IRQ 4), programmed the way Linux's 8250 driver probes and runs it.
 * Its report lines go out through the same UART (printf_lite writes THR), so the host reads them from the serial
 * console's output descriptor; every step keeps DLAB clear while printing.
 *   probe          autoconfig: the IER scratch test, the loopback MSR test (MCR = LOOP|OUT2|RTS reads CTS|DCD),
 *                  FIFO detection (IIR bits 7-6 = 3 after FCR = 1: a 16550A), the scratch register
 *   loopback       MCR.LOOP: "LOOPBACK-SECRET" written to THR comes back through RBR, and never reaches the host
 *   divisor        LCR.DLAB: divisor 1 (115200 baud) written and read back; LCR 8N1; FCR: FIFOs, trigger level 8
 *   thre_reassert  serial8250_do_startup's test: IER.THRI raises THRE, IIR acknowledges it, IER 0 then THRI again
 *                  raises it again
 *   rx_line        IOAPIC pin 4 (edge) -> vector 0x30; the handler reads IIR until NO_INT and drains RBR while
 *                  LSR.DR; after "READY" the host sends "hello serial\n": the guest prints "RX hello serial"
 *   rx_flood       after "FLOOD" the host sends jkrun.serial.flood= bytes (2000) of pattern (i * 7 + 3) & 0xFF through the
 *                  16-byte FIFO: all arrive, in order, through interrupts
 *   tx_burst       THRE-interrupt-driven output as serial8250_tx_chars does: 16 bytes blind per THRE interrupt, a line
 *                  "TXBURST " + 3000 letters ('a' + i % 26)
 *   tx_flood       after "TXFLOOD <n>" the same for jkrun.serial.txflood= bytes (80000) of letters ('A' + i * 7 % 26)
 *                  and a newline: more than the host's pipe and jkrun's 4 KiB buffer hold while the host pauses
 *                  reading, so the guest must wait for THRE and nothing may be lost
 * cmdline: jkrun.test.timeout_ms=<ms> (20000) for each wait, jkrun.serial.flood=<n>
 * Prints "CHECK <name> ok|FAIL <why> <value>", "IRQS <n>", "SERIAL ok <n>" / "SERIAL FAIL <k>"; exit 0 / 1. */
#include "guest.h"

#define COM1 0x3F8
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IIR_NO_INT 0x01
#define IIR_ID 0x0E
#define IIR_THRI 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define VECTOR 0x30
#define TX_LEN 3000
#define RX_MAX 8192

static int failures, checks;
static uint64_t timeout_cycles;
static volatile uint32_t irqs, rx_head;
static volatile uint8_t rx_buf[RX_MAX];
#define TXFLOOD_MAX 200000
static volatile int tx_active;
static uint32_t tx_pos;
static char tx_line[TX_LEN + 16];
static char tx_flood[TXFLOOD_MAX + 2];
static char *tx_buf = tx_line;

static uint8_t in(int reg) { return inb(COM1 + reg); }
static void out(int reg, uint8_t v) { outb(COM1 + reg, v); }

static void check(const char *name, int ok, const char *why, uint64_t v) {
    checks++;
    if (ok) printf_lite("CHECK %s ok\n", name);
    else { printf_lite("CHECK %s FAIL %s 0x%lx\n", name, why, v); failures++; }
}

/* serial8250_handle_irq, reduced: drain the receiver, then feed the transmitter, until IIR says nothing pends. */
static void uart_irq(int v) {
    (void)v;
    irqs++;
    for (int pass = 0; pass < 256; pass++) {
        uint8_t iir = in(IIR);
        if (iir & IIR_NO_INT) break;
        uint8_t lsr = in(LSR);
        while (lsr & LSR_DR) {
            uint8_t c = in(RBR);
            if (rx_head < RX_MAX) rx_buf[rx_head] = c;
            rx_head++;
            lsr = in(LSR);
        }
        if ((iir & IIR_ID) == IIR_THRI && tx_active && (lsr & LSR_THRE)) {
            for (int k = 0; k < 16 && tx_buf[tx_pos]; k++) out(THR, (uint8_t)tx_buf[tx_pos++]);
            if (!tx_buf[tx_pos]) {
                tx_active = 0;
                out(IER, IER_RDI | IER_RLSI);   /* __stop_tx */
            }
        }
    }
}

/* Waits with interrupts on until cond() holds or the timeout passes; returns cond(). */
static int wait_for(int (*cond)(void)) {
    uint64_t t0 = rdtsc();
    while (!cond() && rdtsc() - t0 < timeout_cycles) { sti(); pause(); }
    return cond();
}

static uint32_t want_rx;
static int rx_has_line(void) {
    uint32_t n = rx_head;
    for (uint32_t i = 0; i < n && i < RX_MAX; i++) if (rx_buf[i] == '\n') return 1;
    return 0;
}
static int rx_has_count(void) { return rx_head >= want_rx; }
static int tx_done(void) { return !tx_active; }

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    paging_init();
    idt_init();
    pic_mask_all();
    lapic_enable();
    timeout_cycles = cmdline_u64("jkrun.test.timeout_ms=", 20000) * 3000000ULL;
    uint32_t flood = (uint32_t)cmdline_u64("jkrun.serial.flood=", 2000);
    uint32_t txflood = (uint32_t)cmdline_u64("jkrun.serial.txflood=", 80000);
    if (txflood > TXFLOOD_MAX) txflood = TXFLOOD_MAX;
    if (flood > RX_MAX) flood = RX_MAX;

    /* probe (autoconfig) */
    uint8_t save = in(IER);
    out(IER, 0);
    uint8_t s2 = in(IER) & 0x0F;
    out(IER, 0x0F);
    uint8_t s3 = in(IER) & 0x0F;
    out(IER, save);
    out(MCR, MCR_LOOP | 0x0A);
    uint8_t msr = in(MSR) & 0xF0;
    out(MCR, 0x08);
    out(FCR, 0x01);
    uint8_t fifo = in(IIR) >> 6;
    out(FCR, 0);
    out(SCR, 0x5A);
    uint8_t scr = in(SCR);
    check("probe", s2 == 0 && s3 == 0x0F && msr == 0x90 && fifo == 3 && scr == 0x5A, "ier/msr/fifo/scr",
          (uint64_t)s2 | (uint64_t)s3 << 8 | (uint64_t)msr << 16 | (uint64_t)fifo << 24 | (uint64_t)scr << 32);

    /* loopback: nothing printed until MCR.LOOP is off again */
    const char *secret = "LOOPBACK-SECRET";
    out(FCR, 0x07);
    out(MCR, MCR_LOOP | 0x08);
    int lb_ok = 1;
    uint64_t lb_bad = 0;
    for (int i = 0; secret[i]; i++) {
        out(THR, (uint8_t)secret[i]);
        uint8_t lsr = in(LSR);
        uint8_t c = in(RBR);
        if (!(lsr & LSR_DR) || c != (uint8_t)secret[i]) { lb_ok = 0; lb_bad = (uint64_t)i << 16 | (uint64_t)lsr << 8 | c; }
    }
    uint8_t lsr_after = in(LSR);
    out(MCR, 0x0B);                               /* DTR | RTS | OUT2, as the driver leaves it */
    check("loopback", lb_ok && !(lsr_after & LSR_DR), "byte/lsr/char", lb_bad | (uint64_t)lsr_after << 32);

    /* divisor, line, FIFO control (serial8250_do_set_termios) */
    out(LCR, LCR_DLAB | 0x03);
    out(DLL, 1);
    out(DLM, 0);
    uint8_t dll = in(DLL), dlm = in(DLM);
    out(LCR, 0x03);
    out(FCR, 0x87);                               /* enable, clear both, trigger level 8 */
    check("divisor", dll == 1 && dlm == 0 && in(LCR) == 0x03, "dll/dlm", (uint64_t)dll | (uint64_t)dlm << 8);

    /* the THRE reassert test, with the IRQ not yet routed */
    out(IER, IER_THRI);
    uint8_t iir1 = in(IIR);
    out(IER, 0);
    out(IER, IER_THRI);
    uint8_t iir2 = in(IIR);
    out(IER, 0);
    check("thre_reassert", !(iir1 & IIR_NO_INT) && !(iir2 & IIR_NO_INT) && (iir2 & IIR_ID) == IIR_THRI, "iir1/iir2",
          (uint64_t)iir1 | (uint64_t)iir2 << 8);

    irq_register(VECTOR, uart_irq);
    ioapic_route(4, VECTOR, 0);
    out(IER, IER_RDI | IER_RLSI);
    sti();

    /* a line from the host */
    printf_lite("READY\n");
    int got = wait_for(rx_has_line);
    char line[64];
    uint32_t n = 0;
    for (; n < rx_head && n < sizeof line - 1 && rx_buf[n] != '\n'; n++) line[n] = (char)rx_buf[n];
    line[n] = 0;
    printf_lite("RX %s\n", line);
    check("rx_line", got && n == 12 && memcmp(line, "hello serial", 12) == 0, "bytes", rx_head);

    /* a flood from the host, through the 16-byte FIFO */
    cli();
    rx_head = 0;
    sti();
    want_rx = flood;
    printf_lite("FLOOD %u\n", flood);
    got = wait_for(rx_has_count);
    uint32_t bad = 0, first_bad = 0xFFFFFFFF;
    for (uint32_t i = 0; i < flood && i < rx_head; i++) {
        if (rx_buf[i] != (uint8_t)(i * 7 + 3)) { bad++; if (first_bad == 0xFFFFFFFF) first_bad = i; }
    }
    check("rx_flood", got && rx_head == flood && bad == 0, "count/first_bad", (uint64_t)rx_head | (uint64_t)first_bad << 32);

    /* interrupt-driven output */
    memcpy(tx_line, "TXBURST ", 8);
    for (int i = 0; i < TX_LEN; i++) tx_line[8 + i] = (char)('a' + i % 26);
    tx_line[8 + TX_LEN] = '\n';
    tx_line[9 + TX_LEN] = 0;
    uint32_t irqs_before = irqs;
    cli();
    tx_pos = 0;
    tx_active = 1;
    out(IER, IER_RDI | IER_RLSI | IER_THRI);     /* __start_tx: the rising THRI raises THRE */
    sti();
    got = wait_for(tx_done);
    check("tx_burst", got && tx_pos == TX_LEN + 9 && irqs - irqs_before >= 1, "pos/irqs",
          (uint64_t)tx_pos | (uint64_t)(irqs - irqs_before) << 32);

    /* more output than the host takes while it pauses: THRE must hold the guest back */
    for (uint32_t i = 0; i < txflood; i++) tx_flood[i] = (char)('A' + i * 7 % 26);
    tx_flood[txflood] = '\n';
    tx_flood[txflood + 1] = 0;
    printf_lite("TXFLOOD %u\n", txflood);
    irqs_before = irqs;
    cli();
    tx_buf = tx_flood;
    tx_pos = 0;
    tx_active = 1;
    out(IER, IER_RDI | IER_RLSI | IER_THRI);
    sti();
    got = wait_for(tx_done);
    check("tx_flood", got && tx_pos == txflood + 1, "pos/irqs", (uint64_t)tx_pos | (uint64_t)(irqs - irqs_before) << 32);

    cli();
    out(IER, 0);
    ioapic_mask(4);
    printf_lite("IRQS %u\n", irqs);
    if (failures) printf_lite("SERIAL FAIL %d\n", failures);
    else printf_lite("SERIAL ok %d\n", checks);
    return failures ? 1 : 0;
}
