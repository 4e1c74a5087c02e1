#ifndef BOOT_STDLIB_H
#define BOOT_STDLIB_H
#include <stddef.h>
void abort(void) __attribute__((noreturn));
#endif
