#include "guest.h"

/* memset, memcpy, memcmp, strlen, strncmp, parse_u64: ../common/str.c */
void delay_loops(uint64_t n) { while (n--) pause(); }
