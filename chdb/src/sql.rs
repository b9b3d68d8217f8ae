//! Just enough lexing of ClickHouse SQL to route a request: the leading keyword, and the
//! `FORMAT` clause of an `INSERT` with the data that follows it.

/// An `INSERT … FORMAT name` statement split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertSplit<'a> {
    /// The statement up to, not including, the `FORMAT` keyword (what
    /// `chdb_stream_insert` takes).
    pub head: &'a str,
    /// The input format name.
    pub format: &'a str,
    /// Inline data after the format name (ClickHouse skips blanks and one line break).
    pub data: &'a [u8],
}

/// The first keyword of `sql`, upper-cased, skipping blanks and comments.
pub fn leading_keyword(sql: &[u8]) -> Option<String> {
    let mut lexer = Lexer { src: sql, pos: 0 };
    match lexer.next_token()? {
        Token::Word(start, end) => {
            Some(String::from_utf8_lossy(&sql[start..end]).to_ascii_uppercase())
        }
        _ => None,
    }
}

/// Splits `INSERT … FORMAT name<data>` at its `FORMAT` clause; `None` for any other
/// statement, including `INSERT … VALUES` and `INSERT … SELECT`.
pub fn split_insert_format(sql: &[u8]) -> Option<InsertSplit<'_>> {
    let mut lexer = Lexer { src: sql, pos: 0 };
    match lexer.next_token()? {
        Token::Word(s, e) if sql[s..e].eq_ignore_ascii_case(b"INSERT") => {}
        _ => return None,
    }
    let mut depth = 0usize;
    loop {
        match lexer.next_token()? {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            Token::Word(s, e) if depth == 0 && sql[s..e].eq_ignore_ascii_case(b"FORMAT") => {
                let Token::Word(fs, fe) = lexer.next_token()? else {
                    return None;
                };
                let head = std::str::from_utf8(&sql[..s]).ok()?;
                let format = std::str::from_utf8(&sql[fs..fe]).ok()?;
                return Some(InsertSplit {
                    head,
                    format,
                    data: &sql[data_start(sql, fe)..],
                });
            }
            Token::Word(s, e) if depth == 0 && sql[s..e].eq_ignore_ascii_case(b"VALUES") => {
                return None;
            }
            _ => {}
        }
    }
}

/// Where inline data starts after the format name: blanks, then at most one line break.
fn data_start(sql: &[u8], mut pos: usize) -> usize {
    while pos < sql.len() && matches!(sql[pos], b' ' | b'\t' | b'\x0c') {
        pos += 1;
    }
    if sql.get(pos) == Some(&b'\r') {
        pos += 1;
    }
    if sql.get(pos) == Some(&b'\n') {
        pos += 1;
    }
    pos
}

/// Whether `name` is a plain setting or parameter name (`[A-Za-z_][A-Za-z0-9_.]*`).
pub fn is_plain_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// `value` as a ClickHouse string literal.
pub fn quote_string(value: &str) -> String {
    quote(value, '\'')
}

/// `name` as a back-quoted ClickHouse identifier.
pub fn quote_identifier(name: &str) -> String {
    quote(name, '`')
}

fn quote(value: &str, q: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push(q);
    for c in value.chars() {
        if c == q || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(q);
    out
}

enum Token {
    Word(usize, usize),
    Open,
    Close,
    Other,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Option<Token> {
        self.skip_blanks_and_comments();
        let src = self.src;
        let start = self.pos;
        let c = *src.get(start)?;
        self.pos += 1;
        Some(match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while self.pos < src.len()
                    && (src[self.pos].is_ascii_alphanumeric() || src[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                Token::Word(start, self.pos)
            }
            b'\'' | b'"' | b'`' => {
                self.skip_quoted(c);
                Token::Other
            }
            b'(' | b'[' | b'{' => Token::Open,
            b')' | b']' | b'}' => Token::Close,
            _ => Token::Other,
        })
    }

    fn skip_quoted(&mut self, quote: u8) {
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            self.pos += 1;
            if c == b'\\' {
                self.pos += 1;
            } else if c == quote {
                if self.src.get(self.pos) == Some(&quote) {
                    self.pos += 1;
                } else {
                    return;
                }
            }
        }
        self.pos = self.pos.min(self.src.len());
    }

    fn skip_blanks_and_comments(&mut self) {
        let src = self.src;
        loop {
            while self.pos < src.len() && src[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &src[self.pos..];
            if rest.starts_with(b"--") || rest.starts_with(b"# ") || rest.starts_with(b"#!") {
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                self.pos += end;
            } else if rest.starts_with(b"/*") {
                let end = rest[2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(rest.len(), |p| p + 4);
                self.pos += end;
            } else {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_leading_keyword_after_comments() {
        assert_eq!(
            leading_keyword(b"  -- hi\n/* x */ set a=1").as_deref(),
            Some("SET")
        );
        assert_eq!(leading_keyword(b"(SELECT 1)"), None);
        assert_eq!(leading_keyword(b""), None);
    }

    #[test]
    fn splits_an_insert_at_its_format_clause() {
        let split = split_insert_format(b"INSERT INTO t(a, b) FORMAT RowBinary").unwrap();
        assert_eq!(split.head, "INSERT INTO t(a, b) ");
        assert_eq!(split.format, "RowBinary");
        assert!(split.data.is_empty());
    }

    #[test]
    fn keeps_inline_data_after_one_line_break() {
        let split = split_insert_format(b"insert into t format CSV \n\n1,2\n").unwrap();
        assert_eq!(split.format, "CSV");
        assert_eq!(split.data, b"\n1,2\n");
        let split = split_insert_format(b"INSERT INTO t FORMAT RowBinary\n\x00\x01").unwrap();
        assert_eq!(split.data, b"\x00\x01");
    }

    #[test]
    fn ignores_format_inside_strings_and_parentheses() {
        let sql = b"INSERT INTO FUNCTION file('FORMAT x', 'CSV') SETTINGS s = 'FORMAT' FORMAT TSV";
        let split = split_insert_format(sql).unwrap();
        assert_eq!(split.format, "TSV");
        assert!(split.head.ends_with("'FORMAT' "));
    }

    #[test]
    fn does_not_split_other_statements() {
        assert_eq!(split_insert_format(b"SELECT 1 FORMAT JSON"), None);
        assert_eq!(split_insert_format(b"INSERT INTO t VALUES (1) "), None);
        assert_eq!(split_insert_format(b"INSERT INTO t SELECT 1"), None);
    }

    #[test]
    fn quotes_literals_and_identifiers() {
        assert_eq!(quote_string("a'b\\"), "'a\\'b\\\\'");
        assert_eq!(quote_identifier("my`db"), "`my\\`db`");
        assert!(is_plain_name("max_threads"));
        assert!(!is_plain_name("x; DROP"));
    }
}
