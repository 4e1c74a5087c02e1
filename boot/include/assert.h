/* Freestanding assert for the generated wasm2c code: a failed assertion is a kernel failure. */
#ifndef BOOT_ASSERT_H
#define BOOT_ASSERT_H
void machine_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define assert(e) ((e) ? (void)0 : machine_assert_fail(#e, __FILE__, __LINE__))
#endif
