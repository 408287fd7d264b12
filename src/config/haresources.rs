//! `haresources`: one resource group per logical line. Issue 3 builds the
//! resource stack on it; here each line is split into its node and resources.

use super::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroupLine {
    /// The preferred node.
    pub node: String,
    /// Resources as written (`IPaddr2::192.0.2.100/24/eth0:0`, `mysqld`...).
    pub resources: Vec<String>,
    pub at: Location,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Haresources {
    pub groups: Vec<ResourceGroupLine>,
}

use super::ConfigError;
use std::path::Path;

/// Parses the text of an `haresources` file (`path` is only used in
/// messages). `nodes` is ha.cf's node list (lowercase); the first token of
/// each line must be one of them (compared ignoring case, stored lowercase).
/// An empty `nodes` skips that check (ha.cf's own error says why).
///
/// A line ending in `\` continues on the next; `#` starts a comment.
pub fn parse(path: &Path, text: &str, nodes: &[String]) -> (Haresources, Vec<ConfigError>) {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut start = 0;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((idx, raw)) = lines.next() {
        if tokens.is_empty() {
            start = idx + 1;
        }
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let content = content.trim_end();
        let (content, continues) = match content.strip_suffix('\\') {
            Some(c) => (c, true),
            None => (content, false),
        };
        tokens.extend(content.split_whitespace().map(str::to_string));
        if continues && lines.peek().is_some() {
            continue;
        }
        let line_tokens = std::mem::take(&mut tokens);
        let Some((node, resources)) = line_tokens.split_first() else {
            continue;
        };
        let lower = node.to_lowercase();
        if !nodes.is_empty() && !nodes.contains(&lower) {
            errors.push(ConfigError::Line {
                file: path.to_path_buf(),
                line: start,
                key: node.clone(),
                message: format!(
                    "not a node of ha.cf (nodes: {}); a line starts with its preferred node",
                    nodes.join(", ")
                ),
            });
            continue;
        }
        if resources.is_empty() {
            errors.push(ConfigError::Line {
                file: path.to_path_buf(),
                line: start,
                key: node.clone(),
                message: "no resources: expected `NODE RESOURCE [RESOURCE...]`".into(),
            });
            continue;
        }
        groups.push(ResourceGroupLine {
            node: lower,
            resources: resources.to_vec(),
            at: super::Location {
                file: path.to_path_buf(),
                line: start,
            },
        });
    }
    (Haresources { groups }, errors)
}
