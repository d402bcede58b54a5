//! `--json` output: the gateway's JSON, re-indented without reordering.

use std::io::{self, Write};

/// Pretty-print a JSON text as it is: keys in the gateway's order, numbers
/// and strings untouched; only whitespace changes (two-space indent).
/// `text` must be valid JSON (the caller checks).
pub fn pretty_json(out: &mut impl Write, text: &str) -> io::Result<()> {
    let mut s = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |s: &mut String, depth: usize| {
        s.push('\n');
        s.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            s.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                s.push(c);
            }
            '{' | '[' => {
                s.push(c);
                // Skip whitespace to see whether the container is empty.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    s.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut s, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut s, depth);
                s.push(c);
            }
            ',' => {
                s.push(c);
                newline(&mut s, depth);
            }
            ':' => s.push_str(": "),
            c if c.is_whitespace() => {}
            c => s.push(c),
        }
    }
    writeln!(out, "{s}")
}
