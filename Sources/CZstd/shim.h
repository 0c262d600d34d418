// libzstd (Debian: libzstd-dev). `pkg-config libzstd` supplies the flags.
#include <zstd.h>
#include <zstd_errors.h>
