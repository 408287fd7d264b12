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

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["l0".to_string(), "l1".to_string()]
    }

    fn run(text: &str) -> (Haresources, Vec<String>) {
        let (h, e) = parse(Path::new("haresources"), text, &nodes());
        (h, e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn seed_002() {
        let (h, e) = run("l0 IPaddr2::192.168.1.100/24/eth1:0 drbddisk::r0 Filesystem::/dev/drbd0::/mnt/drbd::ext3 mysqld-max linkserv mon\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.groups.len(), 1);
        let g = &h.groups[0];
        assert_eq!(g.node, "l0");
        assert_eq!(
            g.resources,
            vec![
                "IPaddr2::192.168.1.100/24/eth1:0",
                "drbddisk::r0",
                "Filesystem::/dev/drbd0::/mnt/drbd::ext3",
                "mysqld-max",
                "linkserv",
                "mon"
            ]
        );
        assert_eq!(g.at.line, 1);
    }

    #[test]
    fn continuations_and_comments() {
        let (h, e) = run(
            "# header\n\nl0 IPaddr::10.0.0.1 \\\n   drbddisk::r0 \\\n   httpd # the web\nL1 mysqld\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.groups.len(), 2);
        assert_eq!(
            h.groups[0].resources,
            vec!["IPaddr::10.0.0.1", "drbddisk::r0", "httpd"]
        );
        assert_eq!(h.groups[0].at.line, 3);
        assert_eq!(h.groups[1].node, "l1");
        assert_eq!(h.groups[1].at.line, 6);
        // A continuation on the last line just ends the group.
        let (h, e) = run("l0 a \\");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.groups[0].resources, vec!["a"]);
        assert_eq!(run("").0, Haresources::default());
    }

    #[test]
    fn errors() {
        let (_, e) = run("l0 a\nl2 IPaddr::10.0.0.1\nl1\n");
        assert_eq!(
            e,
            vec![
                "haresources:2: l2: not a node of ha.cf (nodes: l0, l1); a line starts with its preferred node",
                "haresources:3: l1: no resources: expected `NODE RESOURCE [RESOURCE...]`",
            ]
        );
        // Without a node list (ha.cf broken), names are not checked.
        let (h, e) = parse(Path::new("haresources"), "l9 a\n", &[]);
        assert!(e.is_empty());
        assert_eq!(h.groups[0].node, "l9");
    }
}
