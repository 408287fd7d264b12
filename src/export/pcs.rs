//! The model as a `pcs` (0.11) script. The commands work on a copy of the
//! CIB (`pcs -f`) which is pushed once at the end, so a failed command
//! changes nothing in the running cluster. Notes are `#` lines.

use super::{pcmk_duration, Cib, Constraint, Expr, Op, Primitive, Resource, Score};
use std::fmt::Write;

/// `s` as one shell word.
pub fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/=@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn comment(o: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(o, "# {line}");
    }
}

fn kv(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| sh(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ops(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        let _ = write!(
            out,
            " \\\n    op {} interval={} timeout={}",
            op.name,
            pcmk_duration(op.interval),
            pcmk_duration(op.timeout)
        );
        if op.promoted {
            out.push_str(" role=Promoted");
        }
        if let Some(f) = &op.on_fail {
            let _ = write!(out, " on-fail={}", sh(f));
        }
    }
    out
}

/// `pcs resource create` (or `pcs stonith create`) of `p`, with `extra`
/// (`--group G`, `promotable ...`) at the end.
fn create(o: &mut String, p: &Primitive, extra: &str) {
    for n in &p.notes {
        comment(o, n);
    }
    let what = if p.class == "stonith" {
        format!("stonith create {} {}", sh(&p.id), sh(&p.kind))
    } else {
        format!("resource create {} {}", sh(&p.id), sh(&p.agent()))
    };
    let _ = write!(o, "pcs -f \"$cib\" {what}");
    if !p.params.is_empty() {
        let _ = write!(o, " \\\n    {}", kv(&p.params));
    }
    if !p.meta.is_empty() {
        let _ = write!(o, " \\\n    meta {}", kv(&p.meta));
    }
    o.push_str(&ops(&p.ops));
    o.push_str(extra);
    o.push('\n');
}

pub fn render(m: &Cib) -> String {
    let mut o = String::new();
    o.push_str(
        "#!/bin/sh\n# Written by hbctl export pacemaker --format pcs from hbd's configuration.\n",
    );
    o.push_str("# Run on one node of the Pacemaker cluster (pcs 0.11).\n");
    for n in &m.notes {
        comment(&mut o, n);
    }
    o.push_str("set -e\ncib=$(mktemp)\ntrap 'rm -f \"$cib\"' EXIT\npcs cluster cib \"$cib\"\n\n");
    let _ = writeln!(o, "pcs -f \"$cib\" property set {}", kv(&m.properties));
    let _ = writeln!(
        o,
        "pcs -f \"$cib\" resource defaults update {}\n",
        kv(&m.rsc_defaults)
    );
    for r in &m.resources {
        match r {
            Resource::Primitive(p) => create(&mut o, p, ""),
            Resource::Group { id, members, notes } => {
                for n in notes {
                    comment(&mut o, n);
                }
                for p in members {
                    create(&mut o, p, &format!(" \\\n    --group {}", sh(id)));
                }
            }
            Resource::Clone {
                id,
                promotable,
                meta,
                child,
                notes,
            } => {
                for n in notes {
                    comment(&mut o, n);
                }
                let mut extra = String::from(if *promotable {
                    " \\\n    promotable"
                } else {
                    " \\\n    clone"
                });
                let _ = write!(extra, " {}", sh(id));
                if !meta.is_empty() {
                    let _ = write!(extra, " {}", kv(meta));
                }
                create(&mut o, child, &extra);
            }
        }
        o.push('\n');
    }
    for c in &m.constraints {
        match c {
            // pcs reads `-INFINITY` as an option: `avoids` says it (with
            // an ID of pcs's choosing).
            Constraint::Location {
                rsc,
                node,
                score: Score::MinusInfinity,
                promoted: false,
                ..
            } => {
                let _ = writeln!(
                    o,
                    "pcs -f \"$cib\" constraint location {} avoids {}",
                    sh(rsc),
                    sh(node)
                );
            }
            Constraint::Location {
                id,
                rsc,
                node,
                score,
                promoted: false,
            } => {
                let _ = writeln!(
                    o,
                    "pcs -f \"$cib\" constraint location add {} {} {} {score}",
                    sh(id),
                    sh(rsc),
                    sh(node)
                );
            }
            Constraint::Location {
                id,
                rsc,
                node,
                score,
                promoted: true,
            } => {
                let _ = writeln!(
                    o,
                    "pcs -f \"$cib\" constraint location {} rule constraint-id={} role=Promoted score={score} '#uname' eq {}",
                    sh(rsc),
                    sh(id),
                    sh(node)
                );
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
                        Expr::NotDefined(a) => format!("not_defined {}", sh(a)),
                        Expr::Lte(a, v) => format!("{} lte {v}", sh(a)),
                    })
                    .collect();
                let _ = writeln!(
                    o,
                    "pcs -f \"$cib\" constraint location {} rule constraint-id={} score={score} {}",
                    sh(rsc),
                    sh(id),
                    expr.join(" or ")
                );
            }
            Constraint::Colocation {
                id,
                rsc,
                with,
                with_promoted,
                score,
            } => {
                let role = if *with_promoted { "Promoted " } else { "" };
                let _ = writeln!(
                    o,
                    "pcs -f \"$cib\" constraint colocation add {} with {role}{} {score} id={}",
                    sh(rsc),
                    sh(with),
                    sh(id)
                );
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
                    "pcs -f \"$cib\" constraint order {first_action} {} then {then_action} {} kind=Mandatory id={}",
                    sh(first),
                    sh(then),
                    sh(id)
                );
            }
        }
    }
    o.push_str("\npcs cluster cib-push \"$cib\" --config\n");
    o
}
