//! A failed export, the same error on every platform (Unix `export.rs`, `export_elsewhere.rs`).

use std::io;
use std::path::PathBuf;

use rust_i18n::t;

/// A failed export: where it was going (a file, or the directory when none was made) and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub struct ExportError {
    pub path: PathBuf,
    #[source]
    pub error: io::Error,
}

impl crate::error::Localized for ExportError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        t!(
            "export_error.not_written",
            locale = lang.code(),
            path = crate::model::shown_path(&self.path),
            error = crate::os_error::os_error_in(&self.error, lang)
        )
        .into_owned()
    }
}
