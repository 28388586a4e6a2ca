/* Stand-in bcryptprimitives.dll for running tcp-lab.exe under Wine 8 in CI (never shipped).
 * Rust's std on Windows gets its randomness from ProcessPrng in bcryptprimitives.dll, which
 * Wine 8 does not export; this DLL gives it through RtlGenRandom (advapi32's SystemFunction036).
 * Built by .ci/cross.sh with x86_64-w64-mingw32-gcc -shared, placed beside the .exe. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
