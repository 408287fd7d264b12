//! The model as crmsh text, for `crm configure load update FILE`. Notes are
//! `#` lines (crmsh keeps a comment with the element that follows it).

use super::{pcmk_duration, Cib, Constraint, Expr, Op, Primitive, Resource};
use std::fmt::Write;

/// `s` as one crmsh value: bare when it is plain, else double-quoted.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `#` lines: crmsh keeps them as XML comments in the CIB, so they obey
/// XML's rules (found by loading the export with the real crmsh: "Comment
/// may not contain '--' or end with '-'").
fn comment(o: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(o, "# {}", super::cib::comment_text(line));
    }
}

fn kv(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ops(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        let _ = write!(
            out,
            " \\\n\top {} interval={} timeout={}",
            op.name,
            pcmk_duration(op.interval),
            pcmk_duration(op.timeout)
        );
        if op.promoted {
            out.push_str(" role=Promoted");
        }
        if let Some(f) = &op.on_fail {
            let _ = write!(out, " on-fail={}", quote(f));
        }
    }
    out
}

fn primitive(o: &mut String, p: &Primitive) {
    for n in &p.notes {
        comment(o, n);
    }
    let _ = write!(o, "primitive {} {}", p.id, p.agent());
    if !p.params.is_empty() {
        let _ = write!(o, " \\\n\tparams {}", kv(&p.params));
    }
    if !p.meta.is_empty() {
        let _ = write!(o, " \\\n\tmeta {}", kv(&p.meta));
    }
    o.push_str(&ops(&p.ops));
    o.push('\n');
}

pub fn render(m: &Cib) -> String {
    let mut o = String::new();
    comment(
        &mut o,
        "Written by hbctl export pacemaker (format crmsh) from hbd's configuration.\n\
         Load with: crm configure load update FILE",
    );
    for n in &m.notes {
        comment(&mut o, n);
    }
    for n in &m.nodes {
        let _ = writeln!(o, "node {n}");
    }
    // Primitives first (groups and clones name them), then their containers.
    let mut containers = String::new();
    for r in &m.resources {
        match r {
            Resource::Primitive(p) => primitive(&mut o, p),
            Resource::Group { id, members, notes } => {
                for p in members {
                    primitive(&mut o, p);
                }
                for n in notes {
                    comment(&mut containers, n);
                }
                let ids: Vec<&str> = members.iter().map(|p| p.id.as_str()).collect();
                let _ = writeln!(containers, "group {id} {}", ids.join(" "));
            }
            Resource::Clone {
                id,
                promotable,
                meta,
                child,
                notes,
            } => {
                primitive(&mut o, child);
                for n in notes {
                    comment(&mut containers, n);
                }
                let mut all = Vec::new();
                if *promotable {
                    all.push(("promotable".to_string(), "true".to_string()));
                }
                all.extend(meta.iter().cloned());
                let _ = write!(containers, "clone {id} {}", child.id);
                if !all.is_empty() {
                    let _ = write!(containers, " \\\n\tmeta {}", kv(&all));
                }
                containers.push('\n');
            }
        }
    }
    o.push_str(&containers);
    for c in &m.constraints {
        match c {
            Constraint::Location {
                id,
                rsc,
                node,
                score,
                promoted,
            } => {
                if *promoted {
                    let _ = writeln!(
                        o,
                        "location {id} {rsc} rule $role=Promoted {score}: #uname eq {node}"
                    );
                } else {
                    let _ = writeln!(o, "location {id} {rsc} {score}: {node}");
                }
            }
            Constraint::Rule {
                id,
                rsc,
                score,
                any,
            } => {
                let expr: Vec<String> = any
                    .iter()
                    .map(|e| match e {
                        Expr::NotDefined(a) => format!("not_defined {a}"),
                        Expr::Lte(a, v) => format!("{a} number:lte {v}"),
                    })
                    .collect();
                let _ = writeln!(o, "location {id} {rsc} rule {score}: {}", expr.join(" or "));
            }
            Constraint::Colocation {
                id,
                rsc,
                with,
                with_promoted,
                score,
            } => {
                let role = if *with_promoted { ":Promoted" } else { "" };
                let _ = writeln!(o, "colocation {id} {score}: {rsc} {with}{role}");
            }
            Constraint::Order {
                id,
                first,
                first_action,
                then,
                then_action,
            } => {
                let _ = writeln!(
                    o,
                    "order {id} Mandatory: {first}:{first_action} {then}:{then_action}"
                );
            }
        }
    }
    let _ = writeln!(o, "property cib-bootstrap-options: {}", kv(&m.properties));
    let _ = writeln!(o, "rsc_defaults rsc-options: {}", kv(&m.rsc_defaults));
    o
}
