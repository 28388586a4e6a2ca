//! OS errors in the interface's language (`io::Error`s from sockets, files, namespaces), and the
//! engine's own errors when an `io::Error` carries one.

use rust_i18n::t;

use crate::i18n::{Lang, current};
use crate::model::printable;

/// An OS error in the interface's language: in English the OS's own text (`No such file or
/// directory (os error 2)`); in Korean the common errors in Korean with their errno name
/// (`그런 파일이나 디렉터리가 없습니다 (ENOENT)`), anything else with the OS's text in parentheses.
pub fn os_error(e: &std::io::Error) -> String {
    os_error_in(e, current())
}

/// [`os_error`] in `lang`, whatever the interface's language.
pub fn os_error_in(e: &std::io::Error, lang: Lang) -> String {
    // An engine error carried by an io::Error (a refused export) says itself.
    if let Some(engine) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::error::Error>())
    {
        return engine.in_lang(lang);
    }
    if lang == Lang::En {
        return shown(e);
    }
    let l = lang.code();
    if let Some(n) = e.raw_os_error() {
        return match errno_key(n) {
            Some((key, name)) => format!("{} ({name})", t!(key, locale = l)),
            None => t!("os_error.other", locale = l, text = shown(e)).into_owned(),
        };
    }
    match (kind_key(e.kind()), e.get_ref()) {
        // A bare kind (`io::Error::from(ErrorKind::TimedOut)`): its words say it all.
        (Some(key), None) => t!(key, locale = l).into_owned(),
        // A kind with a message of its own: the kind in words, the message as written.
        (Some(key), Some(inner)) => format!(
            "{} ({})",
            t!(key, locale = l),
            printable(&inner.to_string())
        ),
        (None, _) => t!("os_error.other", locale = l, text = shown(e)).into_owned(),
    }
}

/// An OS error's own text, made printable: a message carried by an `io::Error` may quote a name
/// or a path (a peer's, a file's).
fn shown(e: &std::io::Error) -> String {
    printable(&e.to_string()).into_owned()
}

/// The catalogue key and the errno name of the OS errors a person meets most.
fn errno_key(n: i32) -> Option<(&'static str, &'static str)> {
    Some(match n {
        libc::ENOENT => ("os_error.not_found", "ENOENT"),
        libc::EACCES => ("os_error.permission_denied", "EACCES"),
        libc::EPERM => ("os_error.not_permitted", "EPERM"),
        libc::EADDRINUSE => ("os_error.addr_in_use", "EADDRINUSE"),
        libc::EADDRNOTAVAIL => ("os_error.addr_not_available", "EADDRNOTAVAIL"),
        libc::ECONNREFUSED => ("os_error.connection_refused", "ECONNREFUSED"),
        libc::ECONNRESET => ("os_error.connection_reset", "ECONNRESET"),
        libc::ECONNABORTED => ("os_error.connection_aborted", "ECONNABORTED"),
        libc::ETIMEDOUT => ("os_error.timed_out", "ETIMEDOUT"),
        libc::EEXIST => ("os_error.already_exists", "EEXIST"),
        libc::EINVAL => ("os_error.invalid_input", "EINVAL"),
        libc::EPIPE => ("os_error.broken_pipe", "EPIPE"),
        libc::ENOTCONN => ("os_error.not_connected", "ENOTCONN"),
        libc::EHOSTUNREACH => ("os_error.host_unreachable", "EHOSTUNREACH"),
        libc::ENETUNREACH => ("os_error.network_unreachable", "ENETUNREACH"),
        libc::EMFILE => ("os_error.too_many_files", "EMFILE"),
        libc::ENFILE => ("os_error.too_many_files_system", "ENFILE"),
        libc::EISDIR => ("os_error.is_a_directory", "EISDIR"),
        libc::ENOTDIR => ("os_error.not_a_directory", "ENOTDIR"),
        libc::ENOSPC => ("os_error.no_space", "ENOSPC"),
        libc::EROFS => ("os_error.read_only", "EROFS"),
        libc::ENOMEM => ("os_error.out_of_memory", "ENOMEM"),
        _ => return None,
    })
}

/// The catalogue key of an error kind, for errors that carry no errno.
fn kind_key(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => "os_error.not_found",
        K::PermissionDenied => "os_error.permission_denied",
        K::AddrInUse => "os_error.addr_in_use",
        K::AddrNotAvailable => "os_error.addr_not_available",
        K::ConnectionRefused => "os_error.connection_refused",
        K::ConnectionReset => "os_error.connection_reset",
        K::ConnectionAborted => "os_error.connection_aborted",
        K::TimedOut => "os_error.timed_out",
        K::AlreadyExists => "os_error.already_exists",
        K::InvalidInput => "os_error.invalid_input",
        K::InvalidData => "os_error.invalid_data",
        K::BrokenPipe => "os_error.broken_pipe",
        K::NotConnected => "os_error.not_connected",
        K::UnexpectedEof => "os_error.unexpected_eof",
        K::Unsupported => "os_error.unsupported",
        K::OutOfMemory => "os_error.out_of_memory",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_in_korean_keep_the_os_text_in_english() {
        use std::io::{Error, ErrorKind};
        let enoent = Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            os_error_in(&enoent, Lang::En),
            "No such file or directory (os error 2)"
        );
        assert_eq!(
            os_error_in(&enoent, Lang::Ko),
            "그런 파일이나 디렉터리가 없습니다 (ENOENT)"
        );
        let refused = Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            os_error_in(&refused, Lang::Ko),
            "연결이 거부되었습니다 (ECONNREFUSED)"
        );
        let in_use = Error::from_raw_os_error(libc::EADDRINUSE);
        assert!(os_error_in(&in_use, Lang::Ko).starts_with("주소가 이미 사용 중입니다"));
        // A bare kind, and a kind with a message of its own (kept as written).
        assert_eq!(
            os_error_in(&Error::from(ErrorKind::TimedOut), Lang::Ko),
            "시간이 초과되었습니다"
        );
        let custom = Error::new(ErrorKind::InvalidInput, "kernel rejected filter");
        assert_eq!(
            os_error_in(&custom, Lang::Ko),
            "잘못된 인자입니다 (kernel rejected filter)"
        );
        assert_eq!(os_error_in(&custom, Lang::En), "kernel rejected filter");
        // Anything else: the OS's own text, in parentheses.
        let eloop = Error::from_raw_os_error(libc::ELOOP);
        let ko = os_error_in(&eloop, Lang::Ko);
        assert!(ko.starts_with("운영체제 오류 ("), "{ko}");
        assert!(ko.contains(&eloop.to_string()), "{ko}");
        let other = Error::other("boom");
        assert_eq!(os_error_in(&other, Lang::Ko), "운영체제 오류 (boom)");
    }
}
