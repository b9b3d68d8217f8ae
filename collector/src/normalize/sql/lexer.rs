//! The SQL tokenizer under [`super`]: one forward pass over the bytes, no allocation.
//!
//! It knows just enough SQL to tell literals from identifiers, placeholders, keywords and
//! punctuation in the dialects Tern meets (MySQL/MariaDB, PostgreSQL, and the ANSI rules
//! most others follow). It never fails: any byte sequence lexes to some tokens, and every
//! token boundary falls on an ASCII byte or the end, so slicing the source never splits a
//! UTF-8 character.

use std::sync::LazyLock;

use super::Dialect;
use crate::normalize::table::StrTable;

/// What a token is, as far as fingerprinting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A reserved word (`SELECT`, `IN`, `VALUES`): written uppercased.
    Keyword,
    /// A well-known function name (`COUNT`, `COALESCE`): written uppercased, no space before `(`.
    Function,
    /// `NULL`, `TRUE`, `CURRENT_TIMESTAMP`…: written uppercased; an operand.
    Constant,
    /// An identifier, bare or quoted: written as is.
    Ident,
    /// A string, number or other literal value: written as `?`.
    Literal,
    /// A bind placeholder (`?`, `$1`, `:name`, `%s`, `@p1`): written as is.
    Placeholder,
    /// An operator (`=`, `<>`, `||`, `*`…).
    Op,
    /// `(` or `[`.
    Open,
    /// `)` or `]`.
    Close,
    /// `,`.
    Comma,
    /// `.` between qualified names.
    Dot,
    /// PostgreSQL's `::` cast.
    Cast,
    /// `;`.
    Semicolon,
}

impl Kind {
    /// Whether a token of this kind ends an operand, so a following `-` is subtraction.
    fn ends_operand(self) -> bool {
        matches!(
            self,
            Kind::Ident | Kind::Literal | Kind::Placeholder | Kind::Constant | Kind::Close
        )
    }
}

/// One token: its kind, its byte range in the source, and for known words the canonical
/// uppercase spelling from the word table. Kept to twelve bytes so that it is returned in
/// registers rather than through memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Kind,
    /// 1 + index into [`WORDS`], or 0.
    word: u8,
    start: u32,
    end: u32,
}

impl Token {
    fn new(kind: Kind, start: usize, end: usize) -> Self {
        // Positions fit: the lexer reads at most `u32::MAX` bytes.
        Token {
            kind,
            word: 0,
            start: start as u32,
            end: end as u32,
        }
    }

    /// Byte offset where the token starts.
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// Byte offset just past the token.
    pub fn end(&self) -> usize {
        self.end as usize
    }

    /// The canonical spelling of a keyword, function or constant; empty for other tokens.
    pub fn word(&self) -> &'static str {
        match self.word {
            0 => "",
            n => WORDS.get(usize::from(n) - 1).map_or("", |w| w.0),
        }
    }
}

/// A cursor over SQL text. `Copy`, so a caller can look ahead on a copy and come back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pub pos: usize,
    dialect: Dialect,
    /// The kind of the last token returned; decides whether `-1` is a literal.
    pub prev: Option<Kind>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, dialect: Dialect) -> Self {
        let mut cut = src.len().min(u32::MAX as usize);
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        let src = &src[..cut];
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            dialect,
            prev: None,
        }
    }

    /// The source text of a token; empty instead of panicking should a range ever be off.
    pub fn text(&self, t: &Token) -> &'a str {
        self.src.get(t.start()..t.end()).unwrap_or("")
    }

    /// The source text between two token boundaries.
    pub fn source(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or("")
    }

    /// The source byte at `i`, or 0 past the end.
    pub fn byte(&self, i: usize) -> u8 {
        self.at(i)
    }

    /// The byte at `i`, or 0 past the end (0 is whitespace to the lexer, never a token).
    #[inline(always)]
    fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// The next token, or `None` at the end.
    #[inline]
    pub fn next_token(&mut self) -> Option<Token> {
        let t = self.scan()?;
        self.prev = Some(t.kind);
        Some(t)
    }

    #[inline(always)]
    fn scan(&mut self) -> Option<Token> {
        loop {
            self.skip_space();
            let start = self.pos;
            if start >= self.bytes.len() {
                return None;
            }
            let c = self.at(start);
            let n = self.at(start + 1);
            let tok = |lx: &mut Self, kind, end| {
                lx.pos = end;
                Some(Token::new(kind, start, end))
            };
            return match c {
                // Words first: they are most tokens, and no other arm starts with a letter.
                c if is_word_start(c) => Some(self.word(start)),
                b'-' if n == b'-' && self.dash_comment_at(start) => {
                    self.skip_line();
                    continue;
                }
                b'#' if self.dialect == Dialect::MySql => {
                    self.skip_line();
                    continue;
                }
                b'/' if n == b'*' => {
                    self.skip_block_comment();
                    continue;
                }
                b'\'' => {
                    let end = self.quoted_end(start, b'\'', self.dialect.backslash_escapes());
                    tok(self, Kind::Literal, end)
                }
                b'"' if self.dialect == Dialect::MySql => {
                    let end = self.quoted_end(start, b'"', true);
                    tok(self, Kind::Literal, end)
                }
                b'"' | b'`' => {
                    let end = self.quoted_end(start, c, false);
                    tok(self, Kind::Ident, end)
                }
                b'0'..=b'9' => Some(self.number_or_word(start, start)),
                b'.' if self.fraction_at(start) => Some(self.number_or_word(start, start)),
                b'-' | b'+' if self.sign_at(start) => Some(self.number_or_word(start, start + 1)),
                b'?' => {
                    let end = self.digits_end(start + 1);
                    tok(self, Kind::Placeholder, end)
                }
                b'$' if n.is_ascii_digit() => {
                    let end = self.digits_end(start + 1);
                    tok(self, Kind::Placeholder, end)
                }
                b'$' => match self.dollar_tag_end(start) {
                    Some(tag_end) => {
                        let end = self.dollar_quoted_end(start, tag_end);
                        tok(self, Kind::Literal, end)
                    }
                    None => tok(self, Kind::Op, start + 1),
                },
                b':' if n == b':' => tok(self, Kind::Cast, start + 2),
                b':' if is_word_start(n) && n < 0x80 => {
                    let end = self.word_end(start + 1);
                    tok(self, Kind::Placeholder, end)
                }
                b'@' if n == b'@' => {
                    let end = self.word_end(start + 2);
                    tok(self, Kind::Ident, end)
                }
                b'@' if is_word_start(n) => {
                    let end = self.word_end(start + 1);
                    tok(self, Kind::Placeholder, end)
                }
                b'%' if n == b's' && !is_word_byte(self.at(start + 2)) => {
                    tok(self, Kind::Placeholder, start + 2)
                }
                b'%' if n == b'(' => match self.pyformat_end(start) {
                    Some(end) => tok(self, Kind::Placeholder, end),
                    None => tok(self, Kind::Op, start + 1),
                },
                b'(' | b'[' => tok(self, Kind::Open, start + 1),
                b')' | b']' => tok(self, Kind::Close, start + 1),
                b',' => tok(self, Kind::Comma, start + 1),
                b'.' => tok(self, Kind::Dot, start + 1),
                b';' => tok(self, Kind::Semicolon, start + 1),
                _ => {
                    let end = start + op_len(c, n, self.at(start + 2));
                    tok(self, Kind::Op, end)
                }
            };
        }
    }

    fn skip_space(&mut self) {
        while self.pos < self.bytes.len() && is_space(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        let mut i = self.pos + 2;
        while i < self.bytes.len() && !(self.bytes[i] == b'*' && self.at(i + 1) == b'/') {
            i += 1;
        }
        self.pos = (i + 2).min(self.bytes.len());
    }

    /// `--` opens a comment, except in MySQL where it must be followed by a space
    /// (there `1--1` is one minus minus one).
    fn dash_comment_at(&self, i: usize) -> bool {
        self.dialect != Dialect::MySql || is_space(self.at(i + 2))
    }

    /// A `+`/`-` is the sign of a number literal when a digit follows and nothing before it
    /// ends an operand: `= -1` and `(-1` are literals, `a-1` and `2 - 1` are subtractions.
    fn sign_at(&self, i: usize) -> bool {
        let n = self.at(i + 1);
        let starts_number = n.is_ascii_digit() || (n == b'.' && self.fraction_at(i + 1));
        starts_number && !self.prev.is_some_and(Kind::ends_operand)
    }

    /// End of a quoted run opened at `start` by `quote`; a doubled quote continues it,
    /// and with `backslash` so does `\x`. Unterminated runs end at the end of input.
    fn quoted_end(&self, start: usize, quote: u8, backslash: bool) -> usize {
        let mut i = start + 1;
        while i < self.bytes.len() {
            let c = self.bytes[i];
            if backslash && c == b'\\' {
                i += 2;
            } else if c == quote {
                if self.at(i + 1) != quote {
                    return i + 1;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        self.bytes.len()
    }

    fn digits_end(&self, mut i: usize) -> usize {
        while self.at(i).is_ascii_digit() {
            i += 1;
        }
        i
    }

    fn word_end(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && is_word_byte(self.bytes[i]) {
            i += 1;
        }
        i
    }

    /// A number starting at `digits` (after an optional sign at `start`): decimal with
    /// optional fraction and exponent, or `0x…`/`0b…`. Digits running straight into
    /// letters (`1st_floor`, a MySQL identifier) make a word instead.
    fn number_or_word(&mut self, start: usize, digits: usize) -> Token {
        let radix_digit = |c: u8, hex: bool| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c == b'0' || c == b'1'
            }
        };
        let int_end = self.digits_end(digits);
        let n = self.at(digits + 1) | 0x20;
        let mut i = int_end;
        if self.at(digits) == b'0'
            && (n == b'x' || n == b'b')
            && radix_digit(self.at(digits + 2), n == b'x')
        {
            i = digits + 2;
            while radix_digit(self.at(i), n == b'x') {
                i += 1;
            }
        } else if int_end > digits && is_word_byte(self.at(int_end)) && !self.exponent_at(int_end) {
            if digits > start {
                // `-1abc`: the sign is an operator before a word.
                self.pos = start + 1;
                return Token::new(Kind::Op, start, start + 1);
            }
            return self.word(start);
        } else {
            if self.at(i) == b'.' {
                i = self.digits_end(i + 1);
            }
            if self.exponent_at(i) {
                i += 1;
                if matches!(self.at(i), b'+' | b'-') {
                    i += 1;
                }
                i = self.digits_end(i);
            }
        }
        self.pos = i;
        Token::new(Kind::Literal, start, i)
    }

    /// Whether a `.5`-style number starts at the `.` at `i` (rather than a qualifier dot,
    /// as in `t.5col` or after a name).
    fn fraction_at(&self, i: usize) -> bool {
        let end = self.digits_end(i + 1);
        end > i + 1
            && !matches!(self.prev, Some(Kind::Ident | Kind::Close))
            && (!is_word_byte(self.at(end)) || self.exponent_at(end))
    }

    /// Whether an exponent (`e5`, `E-3`) starts at `i` and is not part of a longer word.
    fn exponent_at(&self, i: usize) -> bool {
        if self.at(i) | 0x20 != b'e' {
            return false;
        }
        let j = if matches!(self.at(i + 1), b'+' | b'-') {
            i + 2
        } else {
            i + 1
        };
        let end = self.digits_end(j);
        end > j && !is_word_byte(self.at(end))
    }

    /// A bare word: keyword, function, constant or identifier; or a prefixed string
    /// literal such as `N'…'`, `E'…'`, `X'…'`, `B'…'` or `_utf8mb4'…'`.
    #[inline(always)]
    fn word(&mut self, start: usize) -> Token {
        let end = self.word_end(start);
        let w = &self.bytes[start..end];
        if self.at(end) == b'\'' {
            let prefix = w.len() == 1 && matches!(w[0] | 0x20, b'n' | b'e' | b'x' | b'b');
            if prefix || w[0] == b'_' {
                let backslash = self.dialect.backslash_escapes() || w[0] | 0x20 == b'e';
                let end = self.quoted_end(end, b'\'', backslash);
                self.pos = end;
                return Token::new(Kind::Literal, start, end);
            }
        }
        self.pos = end;
        // After `.` a word is a column or table name whatever it spells (`t.order`).
        if self.prev != Some(Kind::Dot) {
            if let Some((index, kind)) = lookup_word(w) {
                return Token {
                    word: index,
                    ..Token::new(kind, start, end)
                };
            }
        }
        Token::new(Kind::Ident, start, end)
    }

    /// If a PostgreSQL dollar-quote tag (`$$` or `$tag$`) starts at `start`, its end.
    fn dollar_tag_end(&self, start: usize) -> Option<usize> {
        let mut i = start + 1;
        if is_word_start(self.at(i)) && self.at(i) < 0x80 {
            while self.at(i).is_ascii_alphanumeric() || self.at(i) == b'_' {
                i += 1;
            }
        }
        (self.at(i) == b'$').then_some(i + 1)
    }

    /// End of a dollar-quoted string whose opening tag spans `start..tag_end`.
    fn dollar_quoted_end(&self, start: usize, tag_end: usize) -> usize {
        let tag = &self.bytes[start..tag_end];
        let mut i = tag_end;
        while i < self.bytes.len() {
            if self.bytes[i] == b'$' && self.bytes[i..].starts_with(tag) {
                return i + tag.len();
            }
            i += 1;
        }
        self.bytes.len()
    }

    /// End of a Python pyformat placeholder `%(name)s` starting at `start`.
    fn pyformat_end(&self, start: usize) -> Option<usize> {
        let close = self.word_end(start + 2);
        (close > start + 2 && self.at(close) == b')' && self.at(close + 1) == b's')
            .then_some(close + 2)
    }
}

fn is_space(c: u8) -> bool {
    c <= b' ' || c == 0x7f
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Length of the operator starting with `c`: the multi-character operators SQL dialects
/// share, else one byte.
fn op_len(c: u8, n: u8, n2: u8) -> usize {
    match [c, n, n2] {
        [b'-', b'>', b'>'] | [b'<', b'=', b'>'] | [b'#', b'>', b'>'] => 3,
        [b'<', b'=' | b'>' | b'<' | b'@', _]
        | [b'>', b'=' | b'>', _]
        | [b'!' | b':', b'=', _]
        | [b'|', b'|', _]
        | [b'&', b'&', _]
        | [b'=', b'>', _]
        | [b'-' | b'#', b'>', _]
        | [b'@', b'>', _] => 2,
        _ => 1,
    }
}

/// Words written in canonical uppercase, kept sorted for the reader (a test checks).
/// Deliberately short of common column names (`name`, `type`, `status`, `value`, `date`).
static WORDS: &[(&str, Kind)] = &[
    ("ABS", Kind::Function),
    ("ADD", Kind::Keyword),
    ("ALL", Kind::Keyword),
    ("ALTER", Kind::Keyword),
    ("AND", Kind::Keyword),
    ("ANY", Kind::Keyword),
    ("ARRAY", Kind::Function),
    ("ARRAY_AGG", Kind::Function),
    ("AS", Kind::Keyword),
    ("ASC", Kind::Keyword),
    ("AVG", Kind::Function),
    ("BEGIN", Kind::Keyword),
    ("BETWEEN", Kind::Keyword),
    ("BY", Kind::Keyword),
    ("CALL", Kind::Keyword),
    ("CASE", Kind::Keyword),
    ("CAST", Kind::Function),
    ("CEIL", Kind::Function),
    ("COALESCE", Kind::Function),
    ("COLLATE", Kind::Keyword),
    ("COMMIT", Kind::Keyword),
    ("CONCAT", Kind::Function),
    ("CONFLICT", Kind::Keyword),
    ("CONVERT", Kind::Function),
    ("COUNT", Kind::Function),
    ("CREATE", Kind::Keyword),
    ("CROSS", Kind::Keyword),
    ("CURRENT_DATE", Kind::Constant),
    ("CURRENT_TIME", Kind::Constant),
    ("CURRENT_TIMESTAMP", Kind::Constant),
    ("CURRENT_USER", Kind::Constant),
    ("DEFAULT", Kind::Constant),
    ("DELETE", Kind::Keyword),
    ("DENSE_RANK", Kind::Function),
    ("DESC", Kind::Keyword),
    ("DISTINCT", Kind::Keyword),
    ("DO", Kind::Keyword),
    ("DROP", Kind::Keyword),
    ("DUPLICATE", Kind::Keyword),
    ("ELSE", Kind::Keyword),
    ("END", Kind::Keyword),
    ("ESCAPE", Kind::Keyword),
    ("EXCEPT", Kind::Keyword),
    ("EXEC", Kind::Keyword),
    ("EXECUTE", Kind::Keyword),
    ("EXISTS", Kind::Keyword),
    ("EXPLAIN", Kind::Keyword),
    ("EXTRACT", Kind::Function),
    ("FALSE", Kind::Constant),
    ("FETCH", Kind::Keyword),
    ("FIRST", Kind::Keyword),
    ("FLOOR", Kind::Function),
    ("FOR", Kind::Keyword),
    ("FORCE", Kind::Keyword),
    ("FROM", Kind::Keyword),
    ("FULL", Kind::Keyword),
    ("GREATEST", Kind::Function),
    ("GROUP", Kind::Keyword),
    ("GROUP_CONCAT", Kind::Function),
    ("HAVING", Kind::Keyword),
    ("IF", Kind::Function),
    ("IFNULL", Kind::Function),
    ("IGNORE", Kind::Keyword),
    ("ILIKE", Kind::Keyword),
    ("IN", Kind::Keyword),
    ("INNER", Kind::Keyword),
    ("INSERT", Kind::Keyword),
    ("INTERSECT", Kind::Keyword),
    ("INTERVAL", Kind::Keyword),
    ("INTO", Kind::Keyword),
    ("IS", Kind::Keyword),
    ("JOIN", Kind::Keyword),
    ("KEY", Kind::Keyword),
    ("LATERAL", Kind::Keyword),
    ("LEAST", Kind::Function),
    ("LEFT", Kind::Keyword),
    ("LENGTH", Kind::Function),
    ("LIKE", Kind::Keyword),
    ("LIMIT", Kind::Keyword),
    ("LOCK", Kind::Keyword),
    ("LOCKED", Kind::Keyword),
    ("LOWER", Kind::Function),
    ("LOW_PRIORITY", Kind::Keyword),
    ("MAX", Kind::Function),
    ("MERGE", Kind::Keyword),
    ("MIN", Kind::Function),
    ("NATURAL", Kind::Keyword),
    ("NEXT", Kind::Keyword),
    ("NOT", Kind::Keyword),
    ("NOW", Kind::Function),
    ("NOWAIT", Kind::Keyword),
    ("NULL", Kind::Constant),
    ("NULLIF", Kind::Function),
    ("OFFSET", Kind::Keyword),
    ("ON", Kind::Keyword),
    ("ONLY", Kind::Keyword),
    ("OR", Kind::Keyword),
    ("ORDER", Kind::Keyword),
    ("OUTER", Kind::Keyword),
    ("OVER", Kind::Keyword),
    ("PARTITION", Kind::Keyword),
    ("PRIMARY", Kind::Keyword),
    ("RANK", Kind::Function),
    ("RECURSIVE", Kind::Keyword),
    ("REGEXP", Kind::Keyword),
    ("RELEASE", Kind::Keyword),
    ("REPLACE", Kind::Keyword),
    ("RETURNING", Kind::Keyword),
    ("RIGHT", Kind::Keyword),
    ("ROLLBACK", Kind::Keyword),
    ("ROUND", Kind::Function),
    ("ROW", Kind::Keyword),
    ("ROWS", Kind::Keyword),
    ("ROW_NUMBER", Kind::Function),
    ("SAVEPOINT", Kind::Keyword),
    ("SELECT", Kind::Keyword),
    ("SET", Kind::Keyword),
    ("SHARE", Kind::Keyword),
    ("SHOW", Kind::Keyword),
    ("SIMILAR", Kind::Keyword),
    ("SKIP", Kind::Keyword),
    ("SOME", Kind::Keyword),
    ("SQL_CALC_FOUND_ROWS", Kind::Keyword),
    ("START", Kind::Keyword),
    ("STRAIGHT_JOIN", Kind::Keyword),
    ("STRING_AGG", Kind::Function),
    ("SUBSTR", Kind::Function),
    ("SUBSTRING", Kind::Function),
    ("SUM", Kind::Function),
    ("TABLE", Kind::Keyword),
    ("THEN", Kind::Keyword),
    ("TO", Kind::Keyword),
    ("TOP", Kind::Keyword),
    ("TRANSACTION", Kind::Keyword),
    ("TRIM", Kind::Function),
    ("TRUE", Kind::Constant),
    ("TRUNCATE", Kind::Keyword),
    ("UNION", Kind::Keyword),
    ("UNIQUE", Kind::Keyword),
    ("UNNEST", Kind::Function),
    ("UPDATE", Kind::Keyword),
    ("UPPER", Kind::Function),
    ("UPSERT", Kind::Keyword),
    ("USE", Kind::Keyword),
    ("USING", Kind::Keyword),
    ("VALUES", Kind::Keyword),
    ("WHEN", Kind::Keyword),
    ("WHERE", Kind::Keyword),
    ("WINDOW", Kind::Keyword),
    ("WITH", Kind::Keyword),
    ("XOR", Kind::Keyword),
];

/// Longest entry in [`WORDS`]; longer words are identifiers without a lookup.
const MAX_WORD: usize = 20;

/// [`WORDS`] by uppercase spelling, to 1 + index and kind.
static WORD_TABLE: LazyLock<StrTable<(u8, Kind)>> = LazyLock::new(|| {
    StrTable::new(
        WORDS
            .iter()
            .zip(1u8..)
            .map(|(&(w, kind), n)| (w, (n, kind)))
            .collect(),
    )
});

/// Finds `w` (any case) in the word table: 1 + its index, and its kind.
fn lookup_word(w: &[u8]) -> Option<(u8, Kind)> {
    if w.len() < 2 || w.len() > MAX_WORD {
        return None;
    }
    let mut buf = [0u8; MAX_WORD];
    for (b, c) in buf.iter_mut().zip(w) {
        *b = c.to_ascii_uppercase();
    }
    WORD_TABLE.get(&buf[..w.len()]).map(|e| e.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str, dialect: Dialect) -> Vec<(Kind, &str)> {
        let mut lx = Lexer::new(sql, dialect);
        std::iter::from_fn(|| lx.next_token().map(|t| (t.kind, lx.text(&t)))).collect()
    }

    #[test]
    fn word_table_is_sorted_uppercase_and_within_bounds() {
        for pair in WORDS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        assert!(WORDS.len() < 255);
        for (w, _) in WORDS {
            assert!(w.len() <= MAX_WORD && w.len() >= 2);
            assert_eq!(*w, w.to_ascii_uppercase());
        }
    }

    #[test]
    fn a_minus_between_operands_is_an_operator_and_elsewhere_a_sign() {
        use Kind::*;
        assert_eq!(
            kinds("a-1", Dialect::Generic),
            [(Ident, "a"), (Op, "-"), (Literal, "1")]
        );
        assert_eq!(
            kinds("2 -1", Dialect::Generic),
            [(Literal, "2"), (Op, "-"), (Literal, "1")]
        );
        assert_eq!(
            kinds("(-1", Dialect::Generic),
            [(Open, "("), (Literal, "-1")]
        );
        assert_eq!(
            kinds("x = -1.5e3", Dialect::Generic),
            [(Ident, "x"), (Op, "="), (Literal, "-1.5e3")]
        );
        assert_eq!(
            kinds("f(x)-1", Dialect::Generic).last(),
            Some(&(Literal, "1"))
        );
    }

    #[test]
    fn mysql_needs_a_space_after_double_dash_for_a_comment() {
        use Kind::*;
        assert_eq!(
            kinds("1--1", Dialect::MySql),
            [(Literal, "1"), (Op, "-"), (Literal, "-1")]
        );
        assert_eq!(kinds("1-- x", Dialect::MySql), [(Literal, "1")]);
        assert_eq!(kinds("1--1", Dialect::Generic), [(Literal, "1")]);
    }

    #[test]
    fn digits_running_into_letters_make_an_identifier() {
        assert_eq!(
            kinds("1st_floor", Dialect::Generic),
            [(Kind::Ident, "1st_floor")]
        );
        assert_eq!(kinds("0x1F 0b101 1e5", Dialect::Generic).len(), 3);
    }

    #[test]
    fn prefixed_and_dollar_quoted_strings_are_literals() {
        for s in [
            "N'x'",
            "E'it\\'s'",
            "X'ff'",
            "_utf8mb4'x'",
            "$$a'b$$",
            "$fn$ x $$ y $fn$",
        ] {
            assert_eq!(kinds(s, Dialect::PostgreSql), [(Kind::Literal, s)], "{s}");
        }
    }

    #[test]
    fn placeholders_of_every_driver_style_are_recognized() {
        for s in ["?", "?1", "$1", ":name", "%s", "%(name)s", "@p1"] {
            assert_eq!(kinds(s, Dialect::Generic), [(Kind::Placeholder, s)], "{s}");
        }
    }

    #[test]
    fn words_after_a_dot_are_identifiers_even_if_they_spell_keywords() {
        use Kind::*;
        assert_eq!(
            kinds("t.order", Dialect::Generic),
            [(Ident, "t"), (Dot, "."), (Ident, "order")]
        );
    }
}
