/* Only the type is needed: wasm-rt.h declares exception unwind targets with it. The kernel
 * module uses no wasm exceptions, and the machine layer uses __builtin_setjmp instead. */
#ifndef BOOT_SETJMP_H
#define BOOT_SETJMP_H
typedef void *jmp_buf[16];
#endif
