//! Rust source, cut and filled one function at a time: what makes a skeleton from a step
//! (each new piece's body becomes a `todo!()`), lends a learner the reference's version of a
//! piece they have not written yet, and makes the plausible mistakes that the checks must catch.

use std::ops::Range;

/// The byte range of the body of `fn name` in `source`, braces included: from the first `{`
/// after the name to the `}` that closes it. Strings, characters and comments are skipped, so
/// that a `{` in a format string does not count. `None` if there is no such function.
pub fn body(source: &str, name: &str) -> Option<Range<usize>> {
    let bytes = source.as_bytes();
    let mut at = 0;
    let start = loop {
        let found = at + source[at..].find(&format!("fn {name}"))?;
        let after = bytes.get(found + 3 + name.len()).copied().unwrap_or(b' ');
        let before = if found == 0 { b' ' } else { bytes[found - 1] };
        if (after == b'(' || after == b'<') && !is_word(before) && code_at(source, found) {
            break found;
        }
        at = found + 1;
    };
    let open = start + source[start..].find('{')?;
    let mut depth = 0;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open..i + 1);
                }
            }
            _ => {}
        }
        i = skip(bytes, i);
    }
    None
}

/// `source` with the body of `fn name` replaced by `new_body` (braces included), or `None`.
pub fn replace_body(source: &str, name: &str, new_body: &str) -> Option<String> {
    let range = body(source, name)?;
    Some(format!("{}{new_body}{}", &source[..range.start], &source[range.end..]))
}

/// A body that is only `todo!("message")`, indented as the function that it is the body of.
pub fn todo_body(source: &str, name: &str, message: &str) -> Option<String> {
    let range = body(source, name)?;
    let line_start = source[..range.start].rfind('\n').map_or(0, |n| n + 1);
    let indent: String = source[line_start..].chars().take_while(|c| *c == ' ').collect();
    Some(format!("{{\n{indent}    todo!({message:?})\n{indent}}}"))
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Whether the byte at `at` is code, not inside a comment or a string: it is, when scanning
/// from the start lands on it.
fn code_at(source: &str, at: usize) -> bool {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < at {
        i = skip(bytes, i);
    }
    i == at
}

/// The index after the token that starts at `i`: past a whole comment, string or character
/// literal, or one byte.
fn skip(bytes: &[u8], i: usize) -> usize {
    let rest = &bytes[i..];
    let end_of = |pattern: &[u8], from: usize| -> usize {
        (i + from..bytes.len())
            .find(|&j| bytes[j..].starts_with(pattern))
            .map_or(bytes.len(), |j| j + pattern.len())
    };
    if rest.starts_with(b"//") {
        end_of(b"\n", 2)
    } else if rest.starts_with(b"/*") {
        end_of(b"*/", 2)
    } else if rest.starts_with(b"r#\"") {
        end_of(b"\"#", 3)
    } else if rest.starts_with(b"r\"") {
        end_of(b"\"", 2)
    } else if rest[0] == b'"' {
        let mut j = i + 1;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        j + 1
    } else if rest[0] == b'\'' {
        // 'x', '\n', '\'' are characters; 'a in `&'a str` is a lifetime.
        if rest.get(1) == Some(&b'\\') {
            end_of(b"'", 3)
        } else if rest.get(2) == Some(&b'\'') {
            i + 3
        } else {
            i + 1
        }
    } else {
        i + 1
    }
}
