//! The installed manual: man pages and shell completions generated from
//! each binary's clap definition (`clap_mangen`, `clap_complete`), and the
//! configuration page `hbd-config(5)` converted from docs/CONFIG.md.
//!
//! The clap definitions stay in the binaries (`src/bin/*.rs`); each one's
//! `main` calls [`generate_if_asked`] first, so `scripts/package` runs
//!
//! ```text
//! hbctl --generate-docs OUT [--config-doc docs/CONFIG.md]
//! ```
//!
//! and gets `OUT/man8/hbctl.8` (with one page per subcommand,
//! `hbctl-disk-up.8`...), `OUT/completions/{bash/hbctl, zsh/_hbctl,
//! fish/hbctl.fish}` and, with `--config-doc`, `OUT/man5/hbd-config.5`.
//! The option is not declared to clap (it stays out of `--help` and of the
//! generated pages); any other use of it is an ordinary unknown argument.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The hidden option every binary answers (`BIN --generate-docs DIR`).
pub const GENERATE_FLAG: &str = "--generate-docs";
/// Its optional companion naming the Markdown source of `hbd-config(5)`.
pub const CONFIG_DOC_FLAG: &str = "--config-doc";
/// The name of the configuration page (section 5).
pub const CONFIG_PAGE: &str = "hbd-config";

/// When the process was started as `BIN --generate-docs DIR [--config-doc
/// FILE]`: writes the manual of `C` (named `name`) and returns the exit
/// code; else `None` and `main` goes on.
pub fn generate_if_asked<C: clap::CommandFactory>(name: &'static str) -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (out, config_doc) = match args.as_slice() {
        [flag, out] if flag == GENERATE_FLAG => (PathBuf::from(out), None),
        [flag, out, doc_flag, doc] if flag == GENERATE_FLAG && doc_flag == CONFIG_DOC_FLAG => {
            (PathBuf::from(out), Some(PathBuf::from(doc)))
        }
        _ => return None,
    };
    let written = write_manual(command_of::<C>(name), &out).and_then(|mut files| {
        if let Some(doc) = config_doc {
            files.push(write_config_page(&doc, &out)?);
        }
        Ok(files)
    });
    Some(match written {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::from(crate::exit::OK)
        }
        Err(e) => {
            eprintln!("{name}: {GENERATE_FLAG} {}: {e}", out.display());
            ExitCode::from(crate::exit::FAILURE)
        }
    })
}

/// `C`'s clap command under the binary's own name (clap derive would name
/// every binary of the package `hbd`).
pub fn command_of<C: clap::CommandFactory>(name: &'static str) -> clap::Command {
    C::command().name(name).bin_name(name)
}

/// Writes the section 8 pages (the command and every visible subcommand,
/// `NAME-SUB-SUB.8` as git does) and the bash, zsh and fish completions
/// under `out`; returns the files written.
pub fn write_manual(cmd: clap::Command, out: &Path) -> io::Result<Vec<PathBuf>> {
    let name = cmd.get_name().to_string();
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = out.join("man8");
    std::fs::create_dir_all(&man)?;
    let mut files = Vec::new();
    man_pages(&cmd, &man, &mut files)?;
    for (shell, dir) in [
        (clap_complete::Shell::Bash, "bash"),
        (clap_complete::Shell::Zsh, "zsh"),
        (clap_complete::Shell::Fish, "fish"),
    ] {
        let dir = out.join("completions").join(dir);
        std::fs::create_dir_all(&dir)?;
        let written = clap_complete::generate_to(shell, &mut cmd, &name, &dir)?;
        // Where each shell looks: bash-completion by command name, zsh by
        // `_NAME`, fish by `NAME.fish`; clap_complete names bash's `NAME.bash`.
        let file = if shell == clap_complete::Shell::Bash {
            let plain = dir.join(&name);
            std::fs::rename(&written, &plain)?;
            plain
        } else {
            written
        };
        files.push(file);
    }
    Ok(files)
}

fn man_pages(cmd: &clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, files)?;
    }
    let page = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .source(format!("hbd {}", env!("CARGO_PKG_VERSION")))
        .manual("hbd manual");
    files.push(page.generate_to(dir)?);
    Ok(())
}

/// Reads the Markdown at `doc` and writes `out/man5/hbd-config.5`.
pub fn write_config_page(doc: &Path, out: &Path) -> io::Result<PathBuf> {
    let text = std::fs::read_to_string(doc)?;
    let dir = out.join("man5");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{CONFIG_PAGE}.5"));
    std::fs::write(&file, config_page(&text))?;
    Ok(file)
}

/// `hbd-config(5)` from docs/CONFIG.md: the Markdown that file uses
/// (headings, paragraphs, fenced and indented code, nested lists, pipe
/// tables, inline code, bold, italics, links) as man(7) macros. A table
/// becomes tagged paragraphs: the first cell is the tag, the other cells
/// the body, each but the last headed by its column's name.
pub fn config_page(markdown: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH HBD-CONFIG 5 \"\" \"hbd {}\" \"hbd manual\"",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(".SH NAME\nhbd-config \\- the configuration files of hbd: ha.cf, authkeys, haresources, cluster.toml, drbd.conf, keepalived.conf\n");
    let mut r = Renderer::default();
    let mut title_seen = false;
    for line in markdown.lines() {
        // The document's own title is the page's NAME.
        if !title_seen && line.starts_with("# ") {
            title_seen = true;
            r.out.push_str(".SH DESCRIPTION\n");
            continue;
        }
        r.line(line);
    }
    r.flush();
    out.push_str(&r.out);
    out.push_str(".SH SEE ALSO\nhbd(8), hbctl(8), hbd\\-disk(8)\n");
    out
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum Block {
    #[default]
    None,
    Para,
    List,
    Table,
    Indented,
}

#[derive(Default)]
struct Renderer {
    out: String,
    block: Block,
    fence: bool,
    /// The block before the last blank line (a list goes on across one).
    last: Block,
    table: Vec<Vec<String>>,
}

impl Renderer {
    fn line(&mut self, line: &str) {
        if self.fence {
            if line.trim_start().starts_with("```") {
                self.out.push_str(".fi\n.RE\n");
                self.fence = false;
            } else {
                self.code_line(line);
            }
            return;
        }
        if line.trim_start().starts_with("```") {
            self.flush();
            self.out.push_str(".PP\n.RS 4\n.nf\n");
            self.fence = true;
            return;
        }
        if line.trim().is_empty() {
            let ended = self.block;
            self.flush();
            if ended != Block::None {
                self.last = ended;
            }
            return;
        }
        if let Some(h) = line.strip_prefix("## ") {
            self.flush();
            let _ = writeln!(self.out, ".SH {}", inline(h).to_uppercase());
            return;
        }
        if let Some(h) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("#### "))
        {
            self.flush();
            let _ = writeln!(self.out, ".SS {}", inline(h));
            return;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start();
        if text.starts_with('|') {
            if self.block != Block::Table {
                self.flush();
                self.block = Block::Table;
            }
            let cells = table_cells(text);
            if !cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| "-: ".contains(ch)))
            {
                self.table.push(cells);
            }
            return;
        }
        if let Some(item) = list_item(text) {
            if self.block != Block::List {
                self.flush();
                self.block = Block::List;
            }
            let tag = match item.0 {
                Some(n) => format!("\"{n}.\""),
                None if indent >= 2 => "\\(en".to_string(),
                None => "\\(bu".to_string(),
            };
            let width = if indent >= 2 { 6 } else { 3 };
            let _ = writeln!(self.out, ".IP {tag} {width}");
            self.text_line(item.1);
            return;
        }
        if indent >= 4 && self.block == Block::None && self.last != Block::List {
            self.out.push_str(".PP\n.RS 4\n.nf\n");
            self.block = Block::Indented;
        }
        match self.block {
            Block::Indented => self.code_line(&line[4.min(indent)..]),
            Block::List | Block::Para => self.text_line(text),
            Block::None if indent >= 2 && self.last == Block::List => {
                // A paragraph inside the list item above.
                self.out.push_str(".IP \"\" 3\n");
                self.block = Block::List;
                self.text_line(text);
            }
            Block::None | Block::Table => {
                self.flush();
                self.out.push_str(".PP\n");
                self.block = Block::Para;
                self.text_line(text);
            }
        }
    }

    fn text_line(&mut self, text: &str) {
        let t = inline(text);
        if t.starts_with('.') || t.starts_with('\'') {
            self.out.push_str("\\&");
        }
        self.out.push_str(&t);
        self.out.push('\n');
    }

    fn code_line(&mut self, line: &str) {
        let t = escape_code(line);
        if t.starts_with('.') || t.starts_with('\'') {
            self.out.push_str("\\&");
        }
        self.out.push_str(&t);
        self.out.push('\n');
    }

    /// Ends the open block.
    fn flush(&mut self) {
        match self.block {
            Block::Indented => self.out.push_str(".fi\n.RE\n"),
            Block::Table => {
                let rows = std::mem::take(&mut self.table);
                let mut rows = rows.into_iter();
                let header = rows.next().unwrap_or_default();
                for row in rows {
                    let Some((first, rest)) = row.split_first() else {
                        continue;
                    };
                    let _ = writeln!(self.out, ".TP\n\\fB{}\\fR", inline(first));
                    let n = rest.len();
                    for (i, cell) in rest.iter().enumerate() {
                        if cell.is_empty() {
                            continue;
                        }
                        let head = header.get(i + 1).filter(|h| !h.is_empty() && i + 1 < n);
                        match head {
                            Some(h) => {
                                let _ = writeln!(self.out, "{}: {}\n.br", inline(h), inline(cell));
                            }
                            None => self.text_line(cell),
                        }
                    }
                }
            }
            Block::None | Block::Para | Block::List => {}
        }
        self.block = Block::None;
    }
}

/// `- text`, `* text` or `12. text`: the item's number (if any) and text.
fn list_item(text: &str) -> Option<(Option<&str>, &str)> {
    if let Some(t) = text.strip_prefix("- ").or_else(|| text.strip_prefix("* ")) {
        return Some((None, t));
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        if let Some(t) = text[digits..].strip_prefix(". ") {
            return Some((Some(&text[..digits]), t));
        }
    }
    None
}

/// The cells of `| a | b \| c |`, trimmed, with `\|` unescaped.
fn table_cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cell.push('|');
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    cells.push(cell);
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Text as it is in a code block: roff's escape character and hyphens
/// (`\-`, so options copy as ASCII minus).
fn escape_code(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// One line of Markdown text with its inline markup as font changes.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            if let Some(end) = rest[1..].find('`') {
                let _ = write!(out, "\\fB{}\\fR", escape_code(&rest[1..1 + end]));
                rest = &rest[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**") {
                let _ = write!(out, "\\fB{}\\fR", inline(&r[..end]));
                rest = &r[end + 2..];
                continue;
            }
        }
        if c == '*' && rest.len() > 1 && !rest[1..].starts_with(' ') {
            if let Some(end) = rest[1..].find('*') {
                let _ = write!(out, "\\fI{}\\fR", inline(&rest[1..1 + end]));
                rest = &rest[end + 2..];
                continue;
            }
        }
        if c == '[' {
            if let Some((text, target, len)) = link(rest) {
                out.push_str(&inline(text));
                if target.starts_with("http") {
                    let _ = write!(out, " <{}>", escape_code(target));
                }
                rest = &rest[len..];
                continue;
            }
        }
        match c {
            '\\' => out.push_str("\\e"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `[text](target)` at the start of `s`: text, target, bytes taken.
fn link(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find("](")?;
    let text = &s[1..close];
    if text.contains('[') {
        return None;
    }
    let after = &s[close + 2..];
    let end = after.find(')')?;
    Some((text, &after[..end], close + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_to_roff() {
        let md =
            "# title\n\nSome `--config DIR` and **bold** and *it*, see [CONFIG](CONFIG.md).\n\n\
                  ## Command line\n\n    hbd --config DIR\n    .dot\n\n\
                  | option | default | meaning |\n|---|---|---|\n| `a` | `x` | one \\| two |\n\n\
                  - item one\n  continued\n  - nested\n\n    more of nested\n\n\
                  ```\n**not bold**\n```\n";
        let page = config_page(md);
        assert!(page.starts_with(".TH HBD-CONFIG 5"), "{page}");
        assert!(page.contains(".SH DESCRIPTION\n.PP\nSome \\fB\\-\\-config DIR\\fR and \\fBbold\\fR and \\fIit\\fR, see CONFIG.\n"), "{page}");
        assert!(
            page.contains(
                ".SH COMMAND LINE\n.PP\n.RS 4\n.nf\nhbd \\-\\-config DIR\n\\&.dot\n.fi\n.RE\n"
            ),
            "{page}"
        );
        assert!(
            page.contains(".TP\n\\fB\\fBa\\fR\\fR\ndefault: \\fBx\\fR\n.br\none | two\n"),
            "{page}"
        );
        assert!(page.contains(".IP \\(bu 3\nitem one\ncontinued\n.IP \\(en 6\nnested\n.IP \"\" 3\nmore of nested\n"), "{page}");
        // Fenced code does not take the markup of its lines.
        assert!(page.contains(".nf\n**not bold**\n.fi\n.RE\n"), "{page}");
    }

    #[test]
    fn cells_and_links() {
        assert_eq!(table_cells("| a | b \\| c |"), vec!["a", "b | c"]);
        assert_eq!(
            inline("[x](https://e.org/a-b) y"),
            "x <https://e.org/a\\-b> y"
        );
        assert_eq!(inline("a [b] c"), "a [b] c");
        assert_eq!(inline("a\\b"), "a\\eb");
        assert_eq!(list_item("12. x"), Some((Some("12"), "x")));
    }
}
