//! Two private "hosts": network namespaces of this process, each with a TUN device and a
//! documentation address, loopback up. Nothing is named or left on disk: a namespace lives as long
//! as the descriptor that holds it, and the TUN devices are not persistent, so both vanish with the
//! process, however it ends.
//!
//! A socket belongs to the namespace of the thread that created it, so every socket (and the
//! observer's netlink socket) is made on a short-lived thread that first enters the right namespace.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use rust_i18n::t;

use crate::error::Localized;
use crate::i18n::Lang;
use crate::model::Side;

pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const TUN_NAME: &str = "wire0";

// <linux/if_tun.h>: TUNSETIFF is _IOW('T', 202, int) but takes a struct ifreq, hence "bad".
nix::ioctl_write_ptr_bad!(tun_set_iff, 0x4004_54ca, IfReq);
nix::ioctl_readwrite_bad!(get_if_flags, libc::SIOCGIFFLAGS, IfReq);
nix::ioctl_write_ptr_bad!(set_if_flags, libc::SIOCSIFFLAGS, IfReq);
nix::ioctl_write_ptr_bad!(set_if_addr, libc::SIOCSIFADDR, IfReq);
nix::ioctl_write_ptr_bad!(set_if_netmask, libc::SIOCSIFNETMASK, IfReq);

/// Why slow motion cannot run here, and what to do about it: [`HostsError::what_in`] alone, or
/// with the fix ([`Localized::in_lang`]).
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum HostsError {
    /// `/dev/net/tun` cannot be opened (its mode when it could be read).
    Tun {
        #[source]
        error: io::Error,
        mode: Option<u32>,
    },
    /// A call made in setting up a host failed.
    Setup {
        call: SetupCall,
        #[source]
        error: io::Error,
    },
    /// The thread that makes a host panicked.
    Panicked,
}

/// The calls that set up a host, as an error names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupCall {
    /// A system call or file, named as it is in every language (`unshare(CLONE_NEWUSER)`).
    Named(String),
    /// `unshare(CLONE_NEWNET)`: this one needs CAP_SYS_ADMIN whatever the user namespace.
    NewNetNs,
    /// Bringing a device up at an address.
    Configure { dev: &'static str, addr: Ipv4Addr },
}

impl HostsError {
    fn os(call: SetupCall, error: io::Error) -> Self {
        HostsError::Setup { call, error }
    }

    fn named(step: &str, error: io::Error) -> Self {
        HostsError::os(SetupCall::Named(step.to_string()), error)
    }

    /// What failed, without the fix, in `lang`'s words.
    pub fn what_in(&self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            HostsError::Tun { error, mode } => {
                let mode = mode.map(|m| format!(" (mode {m:04o})")).unwrap_or_default();
                format!("/dev/net/tun: {}{mode}", os_msg(error, lang))
            }
            HostsError::Setup { call, error } => {
                let call = match call {
                    SetupCall::Named(s) => s.clone(),
                    SetupCall::NewNetNs => "unshare(CLONE_NEWNET)".to_string(),
                    SetupCall::Configure { dev, addr } => {
                        t!("hosts.configuring", locale = l, dev = dev, addr = addr).into_owned()
                    }
                };
                format!("{call}: {}", os_msg(error, lang))
            }
            HostsError::Panicked => t!("hosts.panicked", locale = l).into_owned(),
        }
    }
}

impl Localized for HostsError {
    fn in_lang(&self, lang: Lang) -> String {
        let how = match self {
            HostsError::Setup {
                call: SetupCall::NewNetNs,
                ..
            } => "hosts.how_netns",
            HostsError::Panicked => return self.what_in(lang),
            _ => "hosts.how_root",
        };
        format!("{}. {}", self.what_in(lang), t!(how, locale = lang.code()))
    }
}

/// "permission denied" rather than "Permission denied (os error 13)"; in Korean, the error in
/// Korean words ([`crate::os_error::os_error_in`]).
fn os_msg(e: &io::Error, lang: Lang) -> String {
    if lang != Lang::En {
        return crate::os_error::os_error_in(e, lang);
    }
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// Both TUN descriptors, for the wire: (client side, server side).
pub type Tuns = (OwnedFd, OwnedFd);

/// One private host: its namespace and the TUN device that is its only link.
pub struct Host {
    pub addr: Ipv4Addr,
    ns: OwnedFd,
    tun: OwnedFd,
}

pub struct Hosts {
    pub client: Host,
    pub server: Host,
    /// How the namespaces were obtained, for the status line.
    pub via: &'static str,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hosts({} ↔ {}, {})",
            self.client.addr, self.server.addr, self.via
        )
    }
}

impl Hosts {
    /// Makes both hosts. Call before any other thread exists (before the async runtime): an
    /// unprivileged user namespace can only be entered by a single-threaded process.
    /// `root`: the process's privilege, checked once at start.
    pub fn create(root: bool) -> Result<Hosts, HostsError> {
        let via = if root {
            "root"
        } else {
            enter_user_namespace()?;
            "user namespace"
        };
        let client = make_host(CLIENT_ADDR)?;
        let server = make_host(SERVER_ADDR)?;
        Ok(Hosts {
            client,
            server,
            via,
        })
    }

    pub fn host(&self, side: Side) -> &Host {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// Runs `f` on a thread inside `side`'s namespace: sockets it creates live there.
    pub fn run_in<T: Send>(
        &self,
        side: Side,
        f: impl FnOnce() -> io::Result<T> + Send,
    ) -> io::Result<T> {
        let ns = &self.host(side).ns;
        std::thread::scope(|s| {
            s.spawn(|| {
                // Affects only this scoped thread, which ends with `f`.
                setns(ns, CloneFlags::CLONE_NEWNET)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        })
    }

    /// Duplicates of both TUN descriptors, for the wire: (client side, server side).
    pub fn tun_fds(&self) -> io::Result<Tuns> {
        Ok((self.client.tun.try_clone()?, self.server.tun.try_clone()?))
    }
}

/// Unprivileged: become root of a new user namespace (so we may make network namespaces).
fn enter_user_namespace() -> Result<(), HostsError> {
    // Check the device first: inside the user namespace a 0600 root device is just as closed, and
    // this names the real obstacle instead of a later, vaguer failure.
    if let Err(e) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        let mode = std::fs::metadata("/dev/net/tun")
            .ok()
            .map(|m| m.permissions().mode() & 0o7777);
        return Err(HostsError::Tun { error: e, mode });
    }
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    // Fails cleanly (EINVAL) if the process already has other threads.
    unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| HostsError::named("unshare(CLONE_NEWUSER)", e.into()))?;
    let write = |path: &str, text: String| -> Result<(), HostsError> {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| HostsError::named(path, e))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// A fresh namespace (made on a throwaway thread, so the caller stays where it is) with lo up and
/// a TUN device at `addr`/24.
fn make_host(addr: Ipv4Addr) -> Result<Host, HostsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // Affects only this throwaway thread; the namespace outlives it through `ns`.
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| HostsError::os(SetupCall::NewNetNs, e.into()))?;
            let ns = std::fs::File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .map_err(|e| HostsError::named("/proc/thread-self/ns/net", e))?;
            let tun = open_tun().map_err(|e| HostsError::named("/dev/net/tun", e))?;
            // IPv6 would add router solicitations to the wire; the lab speaks IPv4 only.
            let _ = std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{TUN_NAME}/disable_ipv6"),
                "1",
            );
            configure("lo", None)
                .and_then(|_| configure(TUN_NAME, Some(addr)))
                .map_err(|e| {
                    let call = SetupCall::Configure {
                        dev: TUN_NAME,
                        addr,
                    };
                    HostsError::os(call, e)
                })?;
            Ok(Host { addr, ns, tun })
        })
        .join()
        .unwrap_or_else(|_| Err(HostsError::Panicked))
    })
}

/// An `ifreq`: 16 bytes of name, then a 24-byte union (flags, or a sockaddr).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut r = IfReq {
            name: [0; 16],
            data: [0; 24],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        r
    }
    fn flags(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }
    fn set_flags(&mut self, f: i16) {
        self.data[..2].copy_from_slice(&f.to_ne_bytes());
    }
    fn set_addr(&mut self, a: Ipv4Addr) {
        // struct sockaddr_in: family (native), port (0), address (network order).
        self.data = [0; 24];
        self.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.data[4..8].copy_from_slice(&a.octets());
    }
}

fn open_tun() -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let fd = OwnedFd::from(f);
    let mut r = IfReq::new(TUN_NAME);
    // Raw IP packets, no 4-byte packet-info header.
    r.set_flags((libc::IFF_TUN | libc::IFF_NO_PI) as i16);
    // SAFETY: `r` is a complete ifreq that outlives the call; the kernel reads only its size.
    unsafe { tun_set_iff(fd.as_raw_fd(), &r) }?;
    Ok(fd)
}

/// Sets the address (with a /24, so the peer is on-link) and brings the interface up.
fn configure(name: &str, addr: Option<Ipv4Addr>) -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let fd = sock.as_raw_fd();
    // SAFETY (each ioctl below): `r` is a complete ifreq that outlives the call.
    if let Some(a) = addr {
        let mut r = IfReq::new(name);
        r.set_addr(a);
        unsafe { set_if_addr(fd, &r) }?;
        let mut r = IfReq::new(name);
        r.set_addr(Ipv4Addr::new(255, 255, 255, 0));
        unsafe { set_if_netmask(fd, &r) }?;
    }
    let mut r = IfReq::new(name);
    unsafe { get_if_flags(fd, &mut r) }?;
    r.set_flags(r.flags() | (libc::IFF_UP | libc::IFF_RUNNING) as i16);
    unsafe { set_if_flags(fd, &r) }?;
    Ok(())
}
