//! The model as a full CIB document (`cibadmin --replace --xml-file`,
//! `crm_verify --xml-file`): `<cib>` with `<configuration>` (crm_config,
//! nodes, resources, constraints, rsc_defaults) and an empty `<status/>`.
//! Every ID is an XML ID, unique in the document; every attribute value is
//! escaped; the notes are XML comments.

use super::{pcmk_duration, Cib, Constraint, Expr, Ids, Op, Primitive, Resource, VALIDATE_WITH};
use std::fmt::Write;

/// The document.
pub fn render(m: &Cib) -> String {
    let mut ids = Ids::default();
    for r in &m.resources {
        ids.reserve(r.id());
        match r {
            Resource::Group { members, .. } => members.iter().for_each(|p| ids.reserve(&p.id)),
            Resource::Clone { child, .. } => ids.reserve(&child.id),
            Resource::Primitive(_) => {}
        }
    }
    for c in &m.constraints {
        ids.reserve(constraint_id(c));
    }
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str("<!-- Written by hbctl export pacemaker from hbd's configuration. -->\n");
    for n in &m.notes {
        comment(&mut o, 0, n);
    }
    let _ = writeln!(
        o,
        "<cib admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\" validate-with=\"{}\">",
        esc(VALIDATE_WITH)
    );
    o.push_str("  <configuration>\n    <crm_config>\n");
    let set = ids.make("cib-bootstrap-options");
    let _ = writeln!(o, "      <cluster_property_set id=\"{}\">", esc(&set));
    for (k, v) in &m.properties {
        nvpair(&mut o, 8, &mut ids, &set, k, v);
    }
    o.push_str("      </cluster_property_set>\n    </crm_config>\n    <nodes>\n");
    for (i, n) in m.nodes.iter().enumerate() {
        // Corosync's nodeid: corosync.conf's nodelist must use the same.
        let _ = writeln!(o, "      <node id=\"{}\" uname=\"{}\"/>", i + 1, esc(n));
    }
    o.push_str("    </nodes>\n    <resources>\n");
    for r in &m.resources {
        resource(&mut o, &mut ids, r);
    }
    o.push_str("    </resources>\n    <constraints>\n");
    for c in &m.constraints {
        constraint(&mut o, &mut ids, c);
    }
    o.push_str("    </constraints>\n    <rsc_defaults>\n");
    let set = ids.make("rsc-options");
    let _ = writeln!(o, "      <meta_attributes id=\"{}\">", esc(&set));
    for (k, v) in &m.rsc_defaults {
        nvpair(&mut o, 8, &mut ids, &set, k, v);
    }
    o.push_str("      </meta_attributes>\n    </rsc_defaults>\n");
    o.push_str("  </configuration>\n  <status/>\n</cib>\n");
    o
}

fn constraint_id(c: &Constraint) -> &str {
    match c {
        Constraint::Location { id, .. }
        | Constraint::Rule { id, .. }
        | Constraint::Colocation { id, .. }
        | Constraint::Order { id, .. } => id,
    }
}

/// `s` escaped for an attribute value or text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` as the body of an XML comment: `--` may not occur in one, nor
/// may it end in `-` (crmsh's `#` comments become XML comments too).
pub(super) fn comment_text(text: &str) -> String {
    let mut t = text.to_string();
    while t.contains("--") {
        t = t.replace("--", "- -");
    }
    if t.ends_with('-') {
        t.push(' ');
    }
    t
}

/// An XML comment.
fn comment(o: &mut String, indent: usize, text: &str) {
    let t = comment_text(&text.replace('\n', " "));
    let _ = writeln!(o, "{:indent$}<!-- {t} -->", "");
}

fn nvpair(o: &mut String, indent: usize, ids: &mut Ids, set: &str, k: &str, v: &str) {
    let id = ids.make(&format!("{set}-{k}"));
    let _ = writeln!(
        o,
        "{:indent$}<nvpair id=\"{}\" name=\"{}\" value=\"{}\"/>",
        "",
        esc(&id),
        esc(k),
        esc(v)
    );
}

fn resource(o: &mut String, ids: &mut Ids, r: &Resource) {
    match r {
        Resource::Primitive(p) => primitive(o, ids, 6, p),
        Resource::Group { id, members, notes } => {
            for n in notes {
                comment(o, 6, n);
            }
            let _ = writeln!(o, "      <group id=\"{}\">", esc(id));
            for p in members {
                primitive(o, ids, 8, p);
            }
            o.push_str("      </group>\n");
        }
        Resource::Clone {
            id,
            promotable,
            meta,
            child,
            notes,
        } => {
            for n in notes {
                comment(o, 6, n);
            }
            let _ = writeln!(o, "      <clone id=\"{}\">", esc(id));
            let mut all = Vec::new();
            if *promotable {
                all.push(("promotable".to_string(), "true".to_string()));
            }
            all.extend(meta.iter().cloned());
            if !all.is_empty() {
                let set = ids.make(&format!("{id}-meta_attributes"));
                let _ = writeln!(o, "        <meta_attributes id=\"{}\">", esc(&set));
                for (k, v) in &all {
                    nvpair(o, 10, ids, &set, k, v);
                }
                o.push_str("        </meta_attributes>\n");
            }
            primitive(o, ids, 8, child);
            o.push_str("      </clone>\n");
        }
    }
}

fn primitive(o: &mut String, ids: &mut Ids, indent: usize, p: &Primitive) {
    for n in &p.notes {
        comment(o, indent, n);
    }
    let _ = write!(
        o,
        "{:indent$}<primitive id=\"{}\" class=\"{}\"",
        "",
        esc(&p.id),
        esc(&p.class)
    );
    if let Some(pr) = &p.provider {
        let _ = write!(o, " provider=\"{}\"", esc(pr));
    }
    let _ = writeln!(o, " type=\"{}\">", esc(&p.kind));
    let inner = indent + 2;
    for (what, pairs) in [
        ("instance_attributes", &p.params),
        ("meta_attributes", &p.meta),
    ] {
        if pairs.is_empty() {
            continue;
        }
        let set = ids.make(&format!("{}-{what}", p.id));
        let _ = writeln!(o, "{:inner$}<{what} id=\"{}\">", "", esc(&set));
        for (k, v) in pairs {
            nvpair(o, inner + 2, ids, &set, k, v);
        }
        let _ = writeln!(o, "{:inner$}</{what}>", "");
    }
    if !p.ops.is_empty() {
        let _ = writeln!(o, "{:inner$}<operations>", "");
        for op in &p.ops {
            operation(o, ids, inner + 2, &p.id, op);
        }
        let _ = writeln!(o, "{:inner$}</operations>", "");
    }
    let _ = writeln!(o, "{:indent$}</primitive>", "");
}

fn operation(o: &mut String, ids: &mut Ids, indent: usize, rsc: &str, op: &Op) {
    let interval = pcmk_duration(op.interval);
    let id = ids.make(&format!("{rsc}-{}-interval-{interval}", op.name));
    let _ = write!(
        o,
        "{:indent$}<op id=\"{}\" name=\"{}\" interval=\"{}\" timeout=\"{}\"",
        "",
        esc(&id),
        esc(&op.name),
        esc(&interval),
        esc(&pcmk_duration(op.timeout))
    );
    if op.promoted {
        o.push_str(" role=\"Promoted\"");
    }
    if let Some(f) = &op.on_fail {
        let _ = write!(o, " on-fail=\"{}\"", esc(f));
    }
    o.push_str("/>\n");
}

fn constraint(o: &mut String, ids: &mut Ids, c: &Constraint) {
    match c {
        Constraint::Location {
            id,
            rsc,
            node,
            score,
            promoted,
        } => {
            let role = if *promoted { " role=\"Promoted\"" } else { "" };
            let _ = writeln!(
                o,
                "      <rsc_location id=\"{}\" rsc=\"{}\"{role} node=\"{}\" score=\"{score}\"/>",
                esc(id),
                esc(rsc),
                esc(node)
            );
        }
        Constraint::Rule {
            id,
            rsc,
            score,
            any,
        } => {
            let _ = writeln!(
                o,
                "      <rsc_location id=\"{}\" rsc=\"{}\">",
                esc(id),
                esc(rsc)
            );
            let rule = ids.make(&format!("{id}-rule"));
            let _ = writeln!(
                o,
                "        <rule id=\"{}\" score=\"{score}\" boolean-op=\"or\">",
                esc(&rule)
            );
            for e in any {
                let eid = ids.make(&format!("{rule}-expression"));
                match e {
                    Expr::NotDefined(a) => {
                        let _ = writeln!(
                            o,
                            "          <expression id=\"{}\" attribute=\"{}\" operation=\"not_defined\"/>",
                            esc(&eid),
                            esc(a)
                        );
                    }
                    Expr::Lte(a, v) => {
                        let _ = writeln!(
                            o,
                            "          <expression id=\"{}\" attribute=\"{}\" operation=\"lte\" value=\"{v}\" type=\"number\"/>",
                            esc(&eid),
                            esc(a)
                        );
                    }
                }
            }
            o.push_str("        </rule>\n      </rsc_location>\n");
        }
        Constraint::Colocation {
            id,
            rsc,
            with,
            with_promoted,
            score,
        } => {
            let role = if *with_promoted {
                " with-rsc-role=\"Promoted\""
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "      <rsc_colocation id=\"{}\" rsc=\"{}\" with-rsc=\"{}\"{role} score=\"{score}\"/>",
                esc(id),
                esc(rsc),
                esc(with)
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
                "      <rsc_order id=\"{}\" first=\"{}\" first-action=\"{}\" then=\"{}\" then-action=\"{}\" kind=\"Mandatory\"/>",
                esc(id),
                esc(first),
                esc(first_action),
                esc(then),
                esc(then_action)
            );
        }
    }
}
