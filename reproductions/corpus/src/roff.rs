//! Manual pages (roff with the `man` and `mdoc` macros, and `tbl` tables) to plain text, by a
//! fixed set of rules, so the same page always gives the same text.
//!
//! - Comments (`.\"`, `'\"`, `\"` to the end of a line) go; a page that only sources another
//!   (`.so`) gives no text.
//! - Control lines: headings and font macros (`SH SS B I BI BR IB IR RB RI SM SB`, mdoc's `Sh
//!   Ss Nm Nd Fl Ar Pa Cm Em Sy Xr`) keep their arguments (quotes removed; the alternating-font
//!   macros join theirs without spaces); `IP` and `TP`-style tags keep their first argument;
//!   paragraph macros (`PP P LP sp br`) become a blank line; every other request is dropped.
//! - Inline escapes: font and size changes (`\fB`, `\f(CW`, `\f[I]`, `\s-1`), zero-width marks
//!   (`\&`, `\:`, `\%`, `\c`, `\/`, `\,`) and strings/registers (`\*(xx`, `\n[x]`) go; `\-` is `-`,
//!   `\e` and `\\` are `\`, `\ ` and `\~` a space; a few named glyphs map to their character
//!   (`\(em` —, `\(en` –, `\(bu` •, `\(aq` ', `\(dq` ", `\(lq` “, `\(rq` ”, `\(co` ©); other named
//!   glyphs go, `\[uXXXX]` is that character.
//! - `tbl`: a table's format lines (up to the one ending in `.`) go; its data lines stay, tabs as
//!   spaces.
//! - Runs of blank lines become one; lines are right-trimmed.

/// Plain text of one roff page.
pub fn to_text(src: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_table_format = false;
    for raw in src.lines() {
        let line = raw.trim_end_matches('\r');
        if in_table_format {
            if line.trim_end().ends_with('.') {
                in_table_format = false;
            }
            continue;
        }
        if line.starts_with(".\\\"") || line.starts_with("'\\\"") || line.starts_with("\\\"") {
            continue;
        }
        if let Some(rest) = line.strip_prefix('.').or_else(|| line.strip_prefix('\'')) {
            let rest = rest.trim_start();
            let (name, args) = match rest.find([' ', '\t']) {
                Some(i) => (&rest[..i], rest[i..].trim()),
                None => (rest, ""),
            };
            match name {
                "so" => return String::new(),
                "TS" => in_table_format = true,
                "SH" | "SS" | "Sh" | "Ss" => {
                    out.push(String::new());
                    out.push(inline(&join_args(args, " ")));
                }
                "B" | "I" | "SM" | "SB" | "Nm" | "Nd" | "Fl" | "Ar" | "Pa" | "Cm" | "Em" | "Sy"
                | "Xr" | "Dl" | "It" => out.push(inline(&join_args(args, " "))),
                "BI" | "BR" | "IB" | "IR" | "RB" | "RI" => out.push(inline(&join_args(args, ""))),
                "IP" | "TQ" => {
                    out.push(String::new());
                    if let Some(first) = split_args(args).into_iter().next() {
                        out.push(inline(&first));
                    }
                }
                "PP" | "P" | "LP" | "sp" | "br" | "TP" | "Pp" => out.push(String::new()),
                _ => {}
            }
            continue;
        }
        out.push(inline(&line.replace('\t', " ")));
    }
    // Right-trim, collapse blank runs, drop leading/trailing blanks.
    let mut text = String::new();
    let mut blank = true;
    for l in out {
        let l = l.trim_end();
        if l.is_empty() {
            if !blank {
                text.push('\n');
            }
            blank = true;
        } else {
            text.push_str(l);
            text.push('\n');
            blank = false;
        }
    }
    text.trim().to_string()
}

/// Splits macro arguments on blanks, honouring double quotes (`""` inside quotes is a quote).
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = args.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

fn join_args(args: &str, sep: &str) -> String {
    split_args(args).join(sep)
}

/// Removes or resolves the inline escapes of one text line.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        match e {
            '"' => break,
            '-' => out.push('-'),
            'e' | '\\' => out.push('\\'),
            ' ' | '~' | '0' => out.push(' '),
            '&' | ':' | '%' | 'c' | '/' | ',' | '^' | '|' | ')' => {}
            'f' | 's' | 'n' | '*' | 'k' => {
                skip_name(&mut chars, e == 's');
            }
            '(' => {
                let name: String = chars.by_ref().take(2).collect();
                out.push_str(glyph(&name));
            }
            '[' => {
                let name: String = chars.by_ref().take_while(|&c| c != ']').collect();
                match unicode(&name) {
                    Some(c) => out.push(c),
                    None => out.push_str(glyph(&name)),
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Skips the name after `\f`, `\s`, `\n`, `\*`, `\k`: `(xx`, `[name]` or one character (for
/// `\s`, an optional sign and digits).
fn skip_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, size: bool) {
    match chars.peek().copied() {
        Some('(') => {
            chars.next();
            chars.next();
            chars.next();
        }
        Some('[') => {
            for c in chars.by_ref() {
                if c == ']' {
                    break;
                }
            }
        }
        Some(c) if size && (c == '+' || c == '-' || c.is_ascii_digit()) => {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
        }
        Some(_) => {
            chars.next();
        }
        None => {}
    }
}

/// `u00E9` → `é` (groff's Unicode escapes).
fn unicode(name: &str) -> Option<char> {
    let hex = name.strip_prefix('u')?;
    (4..=6)
        .contains(&hex.len())
        .then(|| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
        .flatten()
}

fn glyph(name: &str) -> &'static str {
    match name {
        "em" => "—",
        "en" => "–",
        "bu" => "•",
        "aq" => "'",
        "dq" => "\"",
        "lq" => "“",
        "rq" => "”",
        "co" => "©",
        "hy" | "mi" => "-",
        "ti" => "~",
        "rs" => "\\",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_fonts_and_escapes_become_plain_text() {
        let page = ".\\\" a comment\n.TH LS 1 2024\n.SH NAME\nls \\- list directory contents\n\
                    .SH SYNOPSIS\n.B ls\n[\\fIOPTION\\fR]... [\\fIFILE\\fR]...\n.PP\n\
                    .BR \"\\-a\" \", \" \\-\\-all\nshow \\(lqhidden\\(rq files\\(em all of them\\\" note\n\
                    .IP \\(bu 2\nitem\n.TS\ntab(;);\nl l.\na;b\n.TE\n";
        assert_eq!(
            to_text(page),
            "NAME\nls - list directory contents\n\nSYNOPSIS\nls\n[OPTION]... [FILE]...\n\n\
             -a, --all\nshow “hidden” files— all of them\n\n•\nitem\na;b"
        );
    }

    #[test]
    fn a_page_that_sources_another_is_empty_and_output_is_deterministic() {
        assert_eq!(to_text(".so man3/other.3\n"), "");
        let page = ".SH A\n\\s-1small\\s0 \\f(CWcode\\fP \\*(lqx\\n[reg]y \\[u00E9]\n";
        assert_eq!(to_text(page), to_text(page));
        assert_eq!(to_text(page), "A\nsmall code xy é");
    }
}
