//! The brace syntax shared by `drbd.conf` ([`crate::disk::conf`]) and
//! `keepalived.conf` ([`crate::vrrp::conf`]): words, `"quoted strings"`,
//! comments and `{ }` blocks, read into [`Stmt`]s; and [`Parser`], the part
//! of a parser both files share (where messages go, the shape of a block,
//! too few values, a setting given twice).
//!
//! The two files differ only in their [`Dialect`]:
//!
//! | | `drbd.conf` ([`DRBD`]) | `keepalived.conf` ([`KEEPALIVED`]) |
//! |---|---|---|
//! | a statement ends at | `;`: a missing one is an error, a lone one too | the end of the line (`;` is part of a word) |
//! | `{` alone on a line | an error | opens the previous line's block |
//! | comments | `#`, also inside a word (`a#b` is `a`) | `#` and `!` where a word starts (`s3cr3t!x` is one word) |
//! | in `"strings"` | escapes: `\n`, `\t`, `\r`; `\` before any other character keeps that character | no escapes: a backslash stays (commands are split later) |
//! | a `{ }` is called | a section (it starts with its name) | a block (it starts with its keyword) |
//!
//! Alike in both: a string ends on its line (an unclosed one is an error and
//! ends there); lines are counted by `\n` and a word's line is where it
//! starts; blanks are Unicode white space and U+FEFF; a `}` without its `{`
//! and a `{` never closed are errors; at most [`MAX_DEPTH`] blocks nest
//! (deeper is one error, and the rest of the file is not read). `include` is
//! left to the parsers (neither supports it).

use crate::config::{ConfigError, ConfigWarning, Location};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// What ends a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Terminator {
    /// `;` (drbd.conf).
    Semicolon,
    /// The end of the line (keepalived.conf).
    EndOfLine,
}

/// How one file's syntax differs from the other's (see the module's table).
#[derive(Debug)]
pub(crate) struct Dialect {
    pub terminator: Terminator,
    /// The characters that start a comment (to the end of the line).
    pub comments: &'static [char],
    /// Whether a comment character inside a bare word ends the word and
    /// starts a comment (else it is part of the word).
    pub comment_ends_word: bool,
    /// Whether a backslash escapes the next character in a quoted string.
    pub escapes: bool,
    /// What the messages call a `{ }`.
    pub block: &'static str,
    /// What the messages call the word that starts a `{ }`.
    pub head: &'static str,
}

/// DRBD 8.3/8.4's `drbd.conf`.
pub(crate) const DRBD: Dialect = Dialect {
    terminator: Terminator::Semicolon,
    comments: &['#'],
    comment_ends_word: true,
    escapes: true,
    block: "section",
    head: "name",
};

/// keepalived 2.2.7's `keepalived.conf`.
pub(crate) const KEEPALIVED: Dialect = Dialect {
    terminator: Terminator::EndOfLine,
    comments: &['#', '!'],
    comment_ends_word: false,
    escapes: false,
    block: "block",
    head: "keyword",
};

/// The deepest nesting of `{ }` read.
pub(crate) const MAX_DEPTH: usize = 16;

impl Dialect {
    /// Whether `c` ends a bare word.
    fn ends_word(&self, c: char) -> bool {
        is_blank(c)
            || matches!(c, '{' | '}' | '"')
            || (self.terminator == Terminator::Semicolon && c == ';')
            || (self.comment_ends_word && self.comments.contains(&c))
    }
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// A word or a quoted string, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    pub text: String,
    pub line: usize,
    /// Written as a `"quoted string"`.
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(Word),
    Open(usize),
    Close(usize),
    /// `;` or the end of a line, as the dialect says.
    End(usize),
}

/// `words...` ended by the dialect's terminator, or `words... { stmts }`.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    /// Never empty.
    pub words: Vec<Word>,
    pub block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub fn key(&self) -> &Word {
        &self.words[0]
    }
}

/// A setting and the line it was given on.
pub(crate) type Opt<T> = Option<(T, usize)>;

/// What both parsers share: the file's name for messages, the dialect, and
/// the errors and warnings collected so far. `F` is a marker type naming the
/// file, so that each parser adds its own methods beside these
/// (`impl Parser<Drbd> { .. }`).
pub(crate) struct Parser<F> {
    pub file: PathBuf,
    pub dialect: &'static Dialect,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
    of: PhantomData<F>,
}

impl<F> Parser<F> {
    pub fn new(file: &Path, dialect: &'static Dialect) -> Parser<F> {
        Parser {
            file: file.to_path_buf(),
            dialect,
            errors: Vec::new(),
            warnings: Vec::new(),
            of: PhantomData,
        }
    }

    /// The statements of a whole file; syntax errors go to `errors`.
    pub fn statements(&mut self, text: &str) -> Vec<Stmt> {
        let toks = self.tokenize(text);
        let mut stmts = Vec::new();
        let mut i = 0;
        self.block(&toks, &mut i, 0, &mut stmts);
        stmts
    }

    fn tokenize(&mut self, text: &str) -> Vec<Tok> {
        let d = self.dialect;
        let mut toks = Vec::new();
        let mut line = 1;
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\n' => {
                    if d.terminator == Terminator::EndOfLine {
                        toks.push(Tok::End(line));
                    }
                    line += 1;
                }
                c if is_blank(c) => {}
                c if d.comments.contains(&c) => {
                    while it.peek().is_some_and(|&c| c != '\n') {
                        it.next();
                    }
                }
                '{' => toks.push(Tok::Open(line)),
                '}' => toks.push(Tok::Close(line)),
                ';' if d.terminator == Terminator::Semicolon => toks.push(Tok::End(line)),
                '"' => {
                    let mut s = String::new();
                    let mut closed = false;
                    while let Some(&c) = it.peek() {
                        if c == '\n' {
                            break;
                        }
                        it.next();
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' if d.escapes => match it.peek() {
                                Some('\n') | None => {}
                                Some(&e) => {
                                    it.next();
                                    s.push(match e {
                                        'n' => '\n',
                                        't' => '\t',
                                        'r' => '\r',
                                        e => e,
                                    });
                                }
                            },
                            c => s.push(c),
                        }
                    }
                    if !closed {
                        self.err(line, "\"", "string not closed on this line".into());
                    }
                    toks.push(Tok::Word(Word {
                        text: s,
                        line,
                        quoted: true,
                    }));
                }
                c => {
                    let mut s = String::from(c);
                    while let Some(&c) = it.peek() {
                        if d.ends_word(c) {
                            break;
                        }
                        s.push(c);
                        it.next();
                    }
                    toks.push(Tok::Word(Word {
                        text: s,
                        line,
                        quoted: false,
                    }));
                }
            }
        }
        toks
    }

    /// Parses statements until a `}` (returns true) or the end (false).
    fn block(&mut self, toks: &[Tok], i: &mut usize, depth: usize, out: &mut Vec<Stmt>) -> bool {
        let d = self.dialect;
        let mut words: Vec<Word> = Vec::new();
        while let Some(t) = toks.get(*i) {
            *i += 1;
            match t {
                Tok::Word(w) => words.push(w.clone()),
                Tok::End(line) => {
                    if !words.is_empty() {
                        out.push(Stmt {
                            words: std::mem::take(&mut words),
                            block: None,
                        });
                    } else if d.terminator == Terminator::Semicolon {
                        self.err(*line, ";", "unexpected `;`".into());
                    }
                }
                Tok::Open(line) => {
                    if depth >= MAX_DEPTH {
                        let msg = format!("{}s nested too deep", d.block);
                        self.err(*line, "{", msg);
                        *i = toks.len();
                        return false;
                    }
                    let mut inner = Vec::new();
                    let closed = self.block(toks, i, depth + 1, &mut inner);
                    // keepalived: `{` alone on a line opens the previous line's block.
                    let words = if words.is_empty() && d.terminator == Terminator::EndOfLine {
                        match out.last() {
                            Some(prev) if prev.block.is_none() => out.pop().unwrap().words,
                            _ => Vec::new(),
                        }
                    } else {
                        std::mem::take(&mut words)
                    };
                    let key = words.first().map_or("{", |w| w.text.as_str()).to_string();
                    if !closed {
                        self.err(*line, &key, "`{` is never closed: missing `}`".into());
                    }
                    if words.is_empty() {
                        let msg =
                            format!("unexpected `{{`: a {} starts with its {}", d.block, d.head);
                        self.err(*line, "{", msg);
                    } else {
                        out.push(Stmt {
                            words,
                            block: Some(inner),
                        });
                    }
                }
                Tok::Close(line) => {
                    self.unterminated(&mut words, out);
                    if depth == 0 {
                        self.err(*line, "}", "`}` without a matching `{`".into());
                    } else {
                        return true;
                    }
                }
            }
        }
        self.unterminated(&mut words, out);
        false
    }

    /// The words left when a block or the file ends: a statement, missing
    /// its `;` where the dialect wants one.
    fn unterminated(&mut self, words: &mut Vec<Word>, out: &mut Vec<Stmt>) {
        let Some(last) = words.last() else { return };
        if self.dialect.terminator == Terminator::Semicolon {
            let msg = format!("missing `;` after `{}`", last.text);
            let (line, key) = (last.line, words[0].text.clone());
            self.err(line, &key, msg);
        }
        out.push(Stmt {
            words: std::mem::take(words),
            block: None,
        });
    }

    pub fn err(&mut self, line: usize, key: &str, message: String) {
        self.errors.push(ConfigError::Line {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message,
        });
    }

    pub fn warn(&mut self, line: usize, key: &str, message: String) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message,
        });
    }

    pub fn at(&self, line: usize) -> Location {
        Location {
            file: self.file.clone(),
            line,
        }
    }

    /// The block of a `key [names..] { }` statement with exactly `n` names.
    pub fn section<'a>(&mut self, st: &'a Stmt, n: usize) -> Option<(&'a [Word], &'a [Stmt])> {
        let key = st.key();
        let Some(block) = &st.block else {
            let msg = format!("`{}` is a {}: expected `{{`", key.text, self.dialect.block);
            self.err(key.line, &key.text, msg);
            return None;
        };
        let names = &st.words[1..];
        if names.len() < n {
            self.err(key.line, &key.text, "missing name before `{`".into());
            return None;
        }
        if names.len() > n {
            let msg = format!("unexpected `{}`: expected `{{`", names[n].text);
            self.err(names[n].line, &key.text, msg);
            return None;
        }
        Some((names, block))
    }

    /// An error if `st` has fewer than `min` values (words after its key).
    pub fn too_few(&mut self, st: &Stmt, min: usize) -> bool {
        let (key, found) = (st.key(), st.words.len() - 1);
        if found >= min {
            return false;
        }
        let msg = if min == 1 {
            "missing value".to_string()
        } else {
            format!("expected {min} values, found {found}")
        };
        self.err(key.line, &key.text, msg);
        true
    }

    /// Stores a value in `slot`, or an error if it already holds one.
    pub fn set<T>(&mut self, slot: &mut Opt<T>, key: &Word, v: Option<T>) {
        let Some(v) = v else { return };
        if let Some((_, first)) = slot {
            let msg = format!("given twice (first on line {first})");
            self.err(key.line, &key.text, msg);
        } else {
            *slot = Some((v, key.line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements as `line:word` lists (`"` before a quoted word),
    /// `;` after each, blocks in `{ }`; and the errors.
    fn read(d: &'static Dialect, text: &str) -> (String, Vec<String>) {
        fn show(stmts: &[Stmt], out: &mut String) {
            for st in stmts {
                for w in &st.words {
                    let q = if w.quoted { "\"" } else { "" };
                    out.push_str(&format!("{}:{q}{} ", w.line, w.text));
                }
                match &st.block {
                    None => out.push_str("; "),
                    Some(b) => {
                        out.push_str("{ ");
                        show(b, out);
                        out.push_str("} ");
                    }
                }
            }
        }
        let mut p = Parser::<()>::new(Path::new("f"), d);
        let stmts = p.statements(text);
        let mut out = String::new();
        show(&stmts, &mut out);
        let errors = p.errors.iter().map(|e| e.to_string()).collect();
        (out.trim_end().to_string(), errors)
    }

    #[test]
    fn drbd_statements_end_at_semicolons() {
        let (s, e) = read(&DRBD, "a b;c\n  d;;\ne { f g; }");
        assert_eq!(s, "1:a 1:b ; 1:c 2:d ; 3:e { 3:f 3:g ; }");
        assert_eq!(e, ["f:2: ;: unexpected `;`"]);
    }

    #[test]
    fn keepalived_statements_end_at_line_ends() {
        let (s, e) = read(&KEEPALIVED, "a b;c\n\n d\ne\n{\n f g\n}\nh {\n}");
        assert_eq!(s, "1:a 1:b;c ; 3:d ; 4:e { 6:f 6:g ; } 8:h { }");
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn comments() {
        let text = "a#b c\n! d;\ne!f #g\n";
        let (s, e) = read(&DRBD, text);
        assert_eq!(s, "1:a 2:! 2:d ; 3:e!f ;");
        assert_eq!(e, ["f:3: e!f: missing `;` after `e!f`"]);
        let (s, e) = read(&KEEPALIVED, text);
        assert_eq!(s, "1:a#b 1:c ; 3:e!f ;");
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn quotes_and_escapes() {
        let text = "k \"a b\\\"c\\n#!\"x\"\";\n";
        let (s, e) = read(&DRBD, text);
        assert_eq!(s, "1:k 1:\"a b\"c\n#! 1:x 1:\" ;");
        assert!(e.is_empty(), "{e:?}");
        let (s, e) = read(&KEEPALIVED, "k \"a\\\" b\"\nl \"open\nm");
        assert_eq!(s, "1:k 1:\"a\\ 1:b 1:\" ; 2:l 2:\"open ; 3:m ;");
        assert_eq!(
            e,
            [
                "f:1: \": string not closed on this line",
                "f:2: \": string not closed on this line"
            ]
        );
    }

    #[test]
    fn nesting_and_line_numbers() {
        let (s, e) = read(&DRBD, "r {\n on a {\n  d 1;\n }\n}\n");
        assert_eq!(s, "1:r { 2:on 2:a { 3:d 3:1 ; } }");
        assert!(e.is_empty(), "{e:?}");
        let (s, e) = read(&KEEPALIVED, "r {\n on a {\n  d 1\n }\n}\n");
        assert_eq!(s, "1:r { 2:on 2:a { 3:d 3:1 ; } }");
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn unbalanced_braces() {
        let (s, e) = read(&DRBD, "a {\n b\n\n}\n}\n{ c; }\nd { e;");
        assert_eq!(s, "1:a { 2:b ; } 7:d { 7:e ; }");
        assert_eq!(
            e,
            [
                "f:2: b: missing `;` after `b`",
                "f:5: }: `}` without a matching `{`",
                "f:6: {: unexpected `{`: a section starts with its name",
                "f:7: d: `{` is never closed: missing `}`",
            ]
        );
        let (s, e) = read(&KEEPALIVED, "a {\n b\n}\n}\n{ c }\nd { e");
        assert_eq!(s, "1:a { 2:b ; } 6:d { 6:e ; }");
        assert_eq!(
            e,
            [
                "f:4: }: `}` without a matching `{`",
                "f:5: {: unexpected `{`: a block starts with its keyword",
                "f:6: d: `{` is never closed: missing `}`",
            ]
        );
    }

    #[test]
    fn depth_limit() {
        let text = "a { ".repeat(MAX_DEPTH + 1) + &"} ".repeat(MAX_DEPTH + 1);
        for (d, first) in [
            (&DRBD, "f:1: {: sections nested too deep"),
            (&KEEPALIVED, "f:1: {: blocks nested too deep"),
        ] {
            // The rest of the file is not read: every open block is unclosed.
            let (_, e) = read(d, &text);
            assert_eq!(e[0], first);
            assert_eq!(e.len(), 1 + MAX_DEPTH, "{e:?}");
            assert!(e[1..]
                .iter()
                .all(|e| e == "f:1: a: `{` is never closed: missing `}`"));
        }
        let text = "a { ".repeat(MAX_DEPTH) + &"} ".repeat(MAX_DEPTH);
        assert!(read(&KEEPALIVED, &text).1.is_empty());
    }

    #[test]
    fn section_too_few_and_set() {
        for (d, block) in [(&DRBD, "section"), (&KEEPALIVED, "block")] {
            let mut p = Parser::<()>::new(Path::new("f"), d);
            let text = if d.terminator == Terminator::Semicolon {
                "s a { }\nv 1;\ns { }\n"
            } else {
                "s a { }\nv 1\ns { }\n"
            };
            let stmts = p.statements(text);
            assert_eq!(p.section(&stmts[0], 1).unwrap().0[0].text, "a");
            assert!(p.section(&stmts[0], 0).is_none());
            assert!(p.section(&stmts[1], 0).is_none());
            assert!(p.section(&stmts[2], 1).is_none());
            let mut slot: Opt<u32> = None;
            p.set(&mut slot, stmts[1].key(), Some(1));
            p.set(&mut slot, stmts[2].key(), Some(2));
            p.set(&mut slot, stmts[2].key(), None);
            assert_eq!(slot, Some((1, 2)));
            assert!(!p.too_few(&stmts[1], 1));
            assert!(p.too_few(&stmts[1], 2));
            assert!(p.too_few(&stmts[2], 1));
            let e: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(
                e,
                [
                    "f:1: s: unexpected `a`: expected `{`".to_string(),
                    format!("f:2: v: `v` is a {block}: expected `{{`"),
                    "f:3: s: missing name before `{`".to_string(),
                    "f:3: s: given twice (first on line 2)".to_string(),
                    "f:2: v: expected 2 values, found 1".to_string(),
                    "f:3: s: missing value".to_string(),
                ]
            );
        }
    }
}
