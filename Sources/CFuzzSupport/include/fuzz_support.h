#ifndef EXTRAPOLATE_FUZZ_SUPPORT_H
#define EXTRAPOLATE_FUZZ_SUPPORT_H
#include <stddef.h>

/// Installs AddressSanitizer's malloc and free hooks that count the bytes a fuzz input makes live.
void fuzz_hooks_install(void);
/// Starts counting: live and peak bytes go to zero.
void fuzz_measure_begin(void);
/// Stops counting; the most bytes allocated and not yet freed at any moment since `fuzz_measure_begin`.
long fuzz_measure_end(void);

/// libFuzzer's driver (libclang_rt.fuzzer_no_main): parses its flags from argv and calls `callback` per input.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const unsigned char *data, size_t size));

#endif
