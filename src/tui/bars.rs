//! The status bar (what runs, where: `status.rs`) and the key bar (what each key does:
//! `keys.rs`), each fitted to the terminal's width by design, here: parts are dropped by
//! priority, never cut mid-word.

use unicode_width::UnicodeWidthStr;

mod keys;
mod status;

pub(super) use keys::key_bar;
pub(super) use status::{speed_text, status_bar};

/// How important a part is: 0 always shows; higher numbers go first when space is short.
type Prio = u8;

/// A part of a bar: its priority and its forms, the fullest first and the shortest last (a
/// part that must show at any width gives a short form too).
type Part = (Prio, Vec<String>);

/// A part with one form.
fn one(p: Prio, text: impl Into<String>) -> Part {
    (p, vec![text.into()])
}

/// The parts that fit in `width` (joined by `sep`, after a leading space), what is shown in its
/// order: the parts of priority 0 and 1 that fit in their shortest forms, then, most important
/// first, each part in the fullest form that still fits.
fn fit(parts: &[Part], width: u16, sep: &str) -> String {
    let width = usize::from(width).saturating_sub(1);
    let mut chosen: Vec<Option<usize>> = vec![None; parts.len()];
    let total = |chosen: &[Option<usize>]| {
        let (mut w, mut n) = (0usize, 0usize);
        for (i, c) in chosen.iter().enumerate() {
            if let Some(v) = c {
                w += parts[i].1[*v].width();
                n += 1;
            }
        }
        w + sep.width() * n.saturating_sub(1)
    };
    let mut order: Vec<usize> = (0..parts.len())
        .filter(|&i| !parts[i].1.is_empty())
        .collect();
    order.sort_by_key(|&i| parts[i].0);
    // The must-haves and the next most important (priority 1) first, shortest...
    for &i in order.iter().filter(|&&i| parts[i].0 <= 1) {
        chosen[i] = Some(parts[i].1.len() - 1);
        if total(&chosen) > width {
            chosen[i] = None;
        }
    }
    // ...then, most important first, each part as full as still fits.
    for &i in &order {
        let now = chosen[i];
        for v in 0..now.unwrap_or(parts[i].1.len()) {
            chosen[i] = Some(v);
            if total(&chosen) <= width {
                break;
            }
            chosen[i] = now;
        }
    }
    let shown: Vec<&str> = parts
        .iter()
        .zip(&chosen)
        .filter_map(|((_, forms), c)| c.map(|v| forms[v].as_str()))
        .collect();
    format!(" {}", shown.join(sep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_drops_by_priority_and_keeps_order() {
        let parts = vec![one(2, "aaaa"), one(0, "bb"), one(1, "cc")];
        assert_eq!(fit(&parts, 40, " │ "), " aaaa │ bb │ cc");
        assert_eq!(fit(&parts, 9, " │ "), " bb │ cc");
        assert_eq!(fit(&parts, 4, " │ "), " bb");
    }

    #[test]
    fn a_part_that_must_show_shortens_before_others_go() {
        let parts = vec![
            one(0, "tcp-lab"),
            (
                0,
                vec![
                    "TIME_WAIT 60s (Linux)".to_string(),
                    "TIME_WAIT 60s".to_string(),
                ],
            ),
            one(1, "policy auto"),
        ];
        assert_eq!(
            fit(&parts, 60, " │ "),
            " tcp-lab │ TIME_WAIT 60s (Linux) │ policy auto"
        );
        assert_eq!(
            fit(&parts, 40, " │ "),
            " tcp-lab │ TIME_WAIT 60s │ policy auto"
        );
        assert_eq!(fit(&parts, 25, " │ "), " tcp-lab │ TIME_WAIT 60s");
        assert_eq!(fit(&parts, 10, " │ "), " tcp-lab");
    }
}
