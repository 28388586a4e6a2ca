//! Windows' TIME_WAIT length: the `TcpTimedWaitDelay` value under
//! HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters, when an administrator set it.
//! Microsoft documents 30–300 s and a default of 120 s when it is absent (Windows Server 2003
//! and later; Windows 2000 had 240 s).

use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD, RegGetValueW};

/// The value in seconds, clamped to the documented 30–300; None when it is not set.
pub fn time_wait_delay() -> Option<u32> {
    let key = wide("SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters");
    let name = wide("TcpTimedWaitDelay");
    let mut value: u32 = 0;
    let mut size = std::mem::size_of::<u32>() as u32;
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call; `value` is a DWORD
    // buffer of `size` bytes, and RRF_RT_REG_DWORD makes the call refuse any other type.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            name.as_ptr(),
            RRF_RT_REG_DWORD,
            std::ptr::null_mut(),
            (&raw mut value).cast(),
            &mut size,
        )
    };
    (rc == 0).then(|| value.clamp(30, 300))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}
