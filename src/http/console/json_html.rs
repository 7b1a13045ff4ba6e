//! A stored property value as HTML: indented, coloured, each object and array collapsible, and
//! every piece of its text escaped. It walks the value's text once, without building a tree, so
//! numbers show exactly as stored and deep nesting costs no stack.

/// Deeper than this, the value is shown as plain text: browsers flatten very deep markup.
const MAX_RENDERED_DEPTH: usize = 64;

/// The HTML of one valid JSON value (as stored: validated once, strict).
pub fn render(json: &str) -> String {
    let mut html = String::with_capacity(json.len() * 4 + 64);
    if nesting_depth(json) > MAX_RENDERED_DEPTH {
        html.push_str("<span class=\"s\">");
        escape_into(&mut html, json);
        html.push_str("</span>");
        return html;
    }
    let bytes = json.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b'{' | b'[' => {
                let close = if byte == b'{' { "}" } else { "]" };
                let next = skip_space(bytes, at + 1);
                if bytes.get(next).is_some_and(|&b| b == b'}' || b == b']') {
                    html.push_str("<span class=\"p\">");
                    html.push(char::from(byte));
                    html.push_str(close);
                    html.push_str("</span>");
                    at = next + 1;
                    continue;
                }
                html.push_str("<details open><summary><span class=\"p\">");
                html.push(char::from(byte));
                html.push_str("</span></summary><div class=\"members\"><div class=\"m\">");
                at += 1;
            }
            b'}' | b']' => {
                html.push_str("</div></div><span class=\"p\">");
                html.push(char::from(byte));
                html.push_str("</span></details>");
                at += 1;
            }
            b',' => {
                html.push_str("<span class=\"p\">,</span></div><div class=\"m\">");
                at += 1;
            }
            b':' => {
                html.push_str("<span class=\"p\">: </span>");
                at += 1;
            }
            b'"' => {
                let end = string_end(bytes, at);
                let is_key = bytes.get(skip_space(bytes, end)) == Some(&b':');
                html.push_str(if is_key {
                    "<span class=\"k\">"
                } else {
                    "<span class=\"s\">"
                });
                escape_into(&mut html, &json[at..end]);
                html.push_str("</span>");
                at = end;
            }
            b' ' | b'\t' | b'\r' | b'\n' => at += 1,
            _ => {
                let end = bytes[at..]
                    .iter()
                    .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))
                    .map_or(bytes.len(), |length| at + length);
                let word = &json[at..end];
                let class = match word {
                    "true" | "false" => "b",
                    "null" => "z",
                    _ => "n",
                };
                html.push_str("<span class=\"");
                html.push_str(class);
                html.push_str("\">");
                escape_into(&mut html, word);
                html.push_str("</span>");
                at = end;
            }
        }
    }
    html
}

/// Where the string starting at `start` (its opening quote) ends, past its closing quote.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        at += 1;
    }
    at
}

/// How deeply arrays and objects nest, brackets inside strings not counted.
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for byte in json.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Appends `text` escaped as maud escapes the rest of the console (`&`, `<`, `>`, `"`).
pub fn escape_into(html: &mut String, text: &str) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = maud::Escaper::new(html).write_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_value_is_escaped() {
        let html = render(r#"{"x":"</pre><img src=x onerror=alert(1)>"}"#);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;"));
        let html = render(r#""<script>alert(1)</script>""#);
        assert_eq!(
            html,
            "<span class=\"s\">&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</span>"
        );
    }

    #[test]
    fn keys_strings_numbers_and_literals_get_their_classes() {
        let html = render(r#"{"a" : [1.50e3, true, null, "b\"c"], "d": {}}"#);
        for piece in [
            "<span class=\"k\">&quot;a&quot;</span>",
            "<span class=\"n\">1.50e3</span>",
            "<span class=\"b\">true</span>",
            "<span class=\"z\">null</span>",
            "<span class=\"s\">&quot;b\\&quot;c&quot;</span>",
            "<span class=\"p\">{}</span>",
        ] {
            assert!(html.contains(piece), "{piece} not in {html}");
        }
        assert_eq!(html.matches("<details open>").count(), 2);
        assert_eq!(html.matches("</details>").count(), 2);
    }

    #[test]
    fn brackets_inside_strings_neither_open_nor_close() {
        let html = render(r#"["]}{[", "\\"]"#);
        assert_eq!(html.matches("<details").count(), 1);
        assert_eq!(nesting_depth(r#"["]}{[", "\\"]"#), 1);
    }

    #[test]
    fn very_deep_values_are_shown_as_escaped_text() {
        let deep = format!("{}\"<b>\"{}", "[".repeat(500), "]".repeat(500));
        let html = render(&deep);
        assert!(!html.contains("<details"));
        assert!(html.contains("&lt;b&gt;"));
    }
}
