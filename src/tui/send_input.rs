//! The send prompt's text, typed or pasted, never past what one frame carries (9,999 bytes in
//! the session's charset): a paste arrives whole (bracketed paste) and is inserted at once, and
//! the prompt draws only the part it shows, so a long paste costs its length once, not once a
//! character.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use rust_i18n::t;
use tui_input::Input;

use super::app::App;
use crate::protocol::{Charset, MAX_BODY, encoded_len};

/// Bytes `c` takes in `charset` (a character the charset lacks is refused at Enter anyway,
/// saying which).
fn char_len(c: char, charset: Charset) -> usize {
    encoded_len(c.encode_utf8(&mut [0; 4]), charset)
}

/// `text` as one line for the prompt: line breaks and other control characters become spaces
/// (the prompt is one line; the frame gets what was seen).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl App {
    /// Text pasted while the send prompt is open: inserted at the cursor in one go, as much of
    /// it as fits in a frame; the key bar says what was left out.
    pub fn paste(&mut self, text: &str, now: Instant) {
        let Some(input) = self.input.as_ref() else {
            return;
        };
        let charset = self.frame_charset;
        let value = input.value();
        let at = value
            .char_indices()
            .nth(input.cursor())
            .map_or(value.len(), |(i, _)| i);
        let mut room = MAX_BODY.saturating_sub(encoded_len(value, charset));
        let text = one_line(text);
        let mut kept = 0;
        for c in text.chars() {
            let n = char_len(c, charset);
            if n > room {
                break;
            }
            room -= n;
            kept += c.len_utf8();
        }
        let (inserted, left_out) = text.split_at(kept);
        let cursor = input.cursor() + inserted.chars().count();
        let joined = format!("{}{inserted}{}", &value[..at], &value[at..]);
        self.input_len.set(None);
        self.input = Some(Input::new(joined).with_cursor(cursor));
        if !left_out.is_empty() {
            self.say_cut(left_out.chars().count(), now);
        }
    }

    /// After a key edited the prompt: a character typed past a frame's 9,999 bytes is taken
    /// back, and the key bar says why.
    pub(super) fn keep_within_a_frame(&mut self, k: &KeyEvent, now: Instant) {
        let Some(input) = self.input.as_ref() else {
            return;
        };
        let KeyCode::Char(c) = k.code else {
            self.input_len.set(None);
            return;
        };
        // The text's length in the frame's charset, kept from the last key when this one added
        // one character (a burst of typed keys costs each key its own character), else counted.
        let utf8 = input.value().len();
        let len = match self.input_len.get() {
            Some((was, n)) if was + c.len_utf8() == utf8 => n + char_len(c, self.frame_charset),
            _ => encoded_len(input.value(), self.frame_charset),
        };
        self.input_len.set(Some((utf8, len)));
        if len <= MAX_BODY {
            return;
        }
        let (value, cursor) = (input.value(), input.cursor());
        let Some(typed) = cursor
            .checked_sub(1)
            .and_then(|i| value.char_indices().nth(i))
        else {
            return;
        };
        let mut kept = value.to_string();
        kept.remove(typed.0);
        self.input_len.set(None);
        self.input = Some(Input::new(kept).with_cursor(cursor - 1));
        self.say_cut(1, now);
    }

    fn say_cut(&mut self, left_out: usize, now: Instant) {
        let key = if left_out == 1 {
            "flash.send_cut_one"
        } else {
            "flash.send_cut"
        };
        let line = t!(
            key,
            max = MAX_BODY,
            charset = self.frame_charset.name(),
            n = left_out
        );
        self.say(line, now);
    }
}

/// The part of the prompt's text that shows in `width` columns, scrolled to keep the cursor in
/// view, and the cursor's column in it: only that part is laid out, however long the text.
pub(super) fn visible(input: &Input, width: usize) -> (String, usize) {
    use unicode_width::UnicodeWidthChar;
    // Columns by character: tui-input's own walk by grapheme (twice a draw) was most of a
    // debug build's cost of a long text.
    let value = input.value();
    let at = value
        .char_indices()
        .nth(input.cursor())
        .map_or(value.len(), |(i, _)| i);
    let cursor: usize = value[..at].chars().map(|c| c.width().unwrap_or(0)).sum();
    let scroll = cursor.saturating_sub(width.saturating_sub(1));
    let mut col = 0;
    let mut shown = String::new();
    let mut used = 0;
    for c in input.value().chars() {
        let w = c.width().unwrap_or(0);
        if col < scroll {
            col += w;
            continue;
        }
        if used + w > width {
            break;
        }
        used += w;
        shown.push(c);
    }
    (shown, cursor - col.min(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_the_frames_bytes() {
        assert_eq!(encoded_len("Hello 모종닷컴", Charset::Ms949), 14);
        assert_eq!(encoded_len("Hello 모종닷컴", Charset::Utf8), 18);
        assert_eq!(char_len('모', Charset::Ms949), 2);
        assert_eq!(one_line("a\r\nb\tc"), "a  b c");
    }
}
