//! Why a lab could not start, in either language.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum LabError {
    /// `holder` names the process when the caller could find it (" by pid 4242 (java)").
    PortInUse {
        bind: IpAddr,
        port: u16,
        holder: String,
    },
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl crate::error::Localized for LabError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        let l = lang.code();
        match self {
            LabError::PortInUse { bind, port, holder } => {
                // A process's name is anyone's choice (`/proc/self/comm`): made printable here,
                // where every front end gets it.
                let holder = crate::model::printable(holder.trim().trim_start_matches("by "));
                if holder.is_empty() {
                    rust_i18n::t!(
                        "lab_error.port_in_use",
                        locale = l,
                        port = port,
                        bind = bind
                    )
                } else {
                    rust_i18n::t!(
                        "lab_error.port_in_use_by",
                        locale = l,
                        port = port,
                        bind = bind,
                        holder = holder
                    )
                }
            }
            // An address of another host (`--bind 8.8.8.8`): say which addresses work.
            LabError::Listen { addr, source }
                if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
            {
                rust_i18n::t!(
                    "lab_error.listen_not_here",
                    locale = l,
                    addr = addr,
                    error = crate::os_error::os_error_in(source, lang)
                )
            }
            LabError::Listen { addr, source } => rust_i18n::t!(
                "lab_error.listen",
                locale = l,
                addr = addr,
                error = crate::os_error::os_error_in(source, lang)
            ),
        }
        .into_owned()
    }
}
