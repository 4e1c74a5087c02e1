//! A line editor for console input: printable text, backspace, Enter.
//!
//! Pure: it takes bytes and says what to echo and when a line is complete, so the same code
//! serves the interrupt-driven TTY and host tests.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line kept; further characters are refused (and not echoed).
pub const MAX_LINE: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Echo these bytes to the terminal.
    Echo(&'static str),
    /// Echo this character.
    EchoChar(char),
    /// A line was completed (without its terminator).
    Line(String),
    None,
}

#[derive(Default)]
pub struct LineEditor {
    bytes: Vec<u8>,
    after_cr: bool,
}

impl LineEditor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The text typed so far.
    pub fn pending(&self) -> &[u8] {
        &self.bytes
    }

    pub fn feed(&mut self, byte: u8) -> Event {
        let after_cr = core::mem::replace(&mut self.after_cr, byte == b'\r');
        match byte {
            // "\r\n" ends one line, not two.
            b'\n' if after_cr => Event::None,
            b'\r' | b'\n' => {
                let line = String::from_utf8_lossy(&self.bytes).into_owned();
                self.bytes.clear();
                Event::Line(line)
            }
            0x08 | 0x7f => {
                if self.bytes.is_empty() {
                    return Event::None;
                }
                // Remove one whole UTF-8 character: continuation bytes are 10xxxxxx.
                while let Some(b) = self.bytes.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
                Event::Echo("\x08 \x08")
            }
            b if b >= 0x20 || b == b'\t' => {
                if self.bytes.len() >= MAX_LINE {
                    return Event::None;
                }
                self.bytes.push(b);
                if b.is_ascii() {
                    Event::EchoChar(b as char)
                } else {
                    Event::None
                }
            }
            // Other control characters are ignored.
            _ => Event::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut ed = LineEditor::new();
        input
            .iter()
            .filter_map(|&b| match ed.feed(b) {
                Event::Line(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn backspace_and_delete_remove_characters() {
        assert_eq!(lines(b"hellp\x7fo world\r"), ["hello world"]);
        assert_eq!(lines(b"ab\x08\x08\x08cd\n"), ["cd"]);
    }

    #[test]
    fn crlf_is_one_line_and_empty_lines_count() {
        assert_eq!(lines(b"a\r\nb\n\n"), ["a", "b", ""]);
    }

    #[test]
    fn backspace_removes_a_whole_utf8_character() {
        assert_eq!(lines("aé\x7fb\r".as_bytes()), ["ab"]);
    }

    #[test]
    fn echo() {
        let mut ed = LineEditor::new();
        assert_eq!(ed.feed(b'x'), Event::EchoChar('x'));
        assert_eq!(ed.feed(0x7f), Event::Echo("\x08 \x08"));
        assert_eq!(ed.feed(0x7f), Event::None, "nothing left to erase");
        assert_eq!(ed.feed(0x03), Event::None, "control characters are ignored");
    }

    #[test]
    fn long_lines_are_capped() {
        let mut input = std::vec![b'z'; MAX_LINE + 10];
        input.push(b'\r');
        assert_eq!(lines(&input)[0].len(), MAX_LINE);
    }
}
