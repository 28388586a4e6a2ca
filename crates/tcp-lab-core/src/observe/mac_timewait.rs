//! macOS's TIME_WAIT sockets, which netstat2 cannot show: it reads sockets through each process's
//! file descriptors (libproc), and a TIME_WAIT socket belongs to no process any more. The
//! system's `netstat -an -p tcp` reads the kernel's whole table (the `net.inet.tcp.pcblist_n`
//! sysctl) and prints them; its lines are read here.

use std::net::{IpAddr, SocketAddr};

use super::{TcpState, unmap};

/// The TIME_WAIT sockets of `port`, from `netstat -an -p tcp`; none when it cannot run.
#[cfg(target_os = "macos")]
pub fn time_wait_rows(port: u16) -> std::io::Result<Vec<(SocketAddr, SocketAddr)>> {
    let out = std::process::Command::new("/usr/sbin/netstat")
        .args(["-an", "-p", "tcp"])
        .output()?;
    Ok(parse(&String::from_utf8_lossy(&out.stdout), port))
}

/// The TIME_WAIT lines of netstat's output whose local or remote port is `port`:
/// `tcp4  0  0  127.0.0.1.9999  127.0.0.1.52345  TIME_WAIT` (BSD writes the port after a dot).
pub fn parse(text: &str, port: u16) -> Vec<(SocketAddr, SocketAddr)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [proto, _, _, local, remote, state, ..] = f.as_slice() else {
                return None;
            };
            if !proto.starts_with("tcp") || TcpState::parse(state) != Some(TcpState::TimeWait) {
                return None;
            }
            let (local, remote) = (addr(local)?, addr(remote)?);
            (local.port() == port || remote.port() == port).then_some((local, remote))
        })
        .collect()
}

/// `127.0.0.1.9999`, `::1.9999`, `fe80::1%lo0.9999` as an address.
fn addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.rsplit_once('.')?;
    let ip = ip.split('%').next()?;
    Some(unmap(SocketAddr::new(
        ip.parse::<IpAddr>().ok()?,
        port.parse().ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_time_wait_lines_of_the_port_only() {
        let text = "Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp4       0      0  127.0.0.1.9999         127.0.0.1.52345        TIME_WAIT
tcp4       0      0  127.0.0.1.52346        127.0.0.1.9999         TIME_WAIT
tcp6       0      0  fe80::1%lo0.9999       fe80::1%lo0.52347      TIME_WAIT
tcp4       0      0  127.0.0.1.9999         127.0.0.1.52348        ESTABLISHED
tcp4       0      0  127.0.0.1.8080         127.0.0.1.52349        TIME_WAIT
tcp46      0      0  *.9999                 *.*                    LISTEN
udp4       0      0  *.9999                 *.*
";
        let got = parse(text, 9999);
        let sa = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(
            got,
            vec![
                (sa("127.0.0.1:9999"), sa("127.0.0.1:52345")),
                (sa("127.0.0.1:52346"), sa("127.0.0.1:9999")),
                (sa("[fe80::1]:9999"), sa("[fe80::1]:52347")),
            ]
        );
    }
}
