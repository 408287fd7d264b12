//! `hbctl export pacemaker`: the cluster's configuration as a Pacemaker
//! configuration, for users who move to the ClusterLabs stack (heartbeat
//! shipped `haresources2cib.py` for the same step; it is long unmaintained).
//!
//! A pure function, in two steps: [`pacemaker`] turns a loaded
//! [`Config`](crate::config::Config) into a [`Cib`] — Pacemaker's own terms
//! (primitives, groups, promotable clones, location/colocation/order
//! constraints, cluster properties, resource defaults) plus the notes on
//! what has no equivalent — and three renderers write it: [`cib::render`]
//! (a full `<cib>` document for `cibadmin --replace` / `crm_verify`),
//! [`pcs::render`] (a `pcs -f` script) and [`crmsh::render`] (`crm
//! configure load update` text). Nothing here reads a file or runs a program.
//!
//! The mapping (docs/MIGRATION.md has the table):
//! - each haresources line is a group, its resources in haresources order
//!   (Pacemaker starts a group's members left to right and stops them right
//!   to left, as heartbeat did); the preferred node is a location constraint
//!   of [`PREFERRED_SCORE`];
//! - `drbddisk::RES` leaves the group: `RES` becomes an `ocf:linbit:drbd`
//!   promotable clone, the group is colocated with its Promoted role, and the
//!   promotion is ordered before the start of the resource that followed
//!   `drbddisk` (so the start order stays hbd's);
//! - `[[check]]`s become monitor operations of the resource they watch;
//! - `auto_failback` becomes `resource-stickiness`, ping nodes an
//!   `ocf:pacemaker:ping` clone with a location rule per group, `stonith_host`
//!   lines `stonith:` resources.

pub mod cib;
pub mod crmsh;
pub mod pcs;

use crate::agents::AgentKind;
use crate::config::{AutoFailback, CheckConfig, Config, GroupConfig};
use crate::monitor::checks::CheckKind;
use crate::monitor::scheduler::Action as CheckAction;
use std::collections::BTreeSet;
use std::time::Duration;

/// The CIB schema the document is written for: the first with the
/// `Promoted` role name (Pacemaker 2.1; Debian 12 ships 2.1.5, which
/// validates up to pacemaker-3.9).
pub const VALIDATE_WITH: &str = "pacemaker-3.7";
/// Location score of a group on its haresources node (and of the
/// promotion of its DRBD resources there).
pub const PREFERRED_SCORE: i64 = 100;
/// `ocf:pacemaker:ping`'s attribute and the multiplier per reached host.
pub const PING_ATTRIBUTE: &str = "pingd";
pub const PING_MULTIPLIER: u32 = 1000;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cib,
    Pcs,
    Crmsh,
}

/// Renders `config` in `format`.
pub fn export(config: &Config, format: Format) -> String {
    let model = pacemaker(config);
    match format {
        Format::Cib => cib::render(&model),
        Format::Pcs => pcs::render(&model),
        Format::Crmsh => crmsh::render(&model),
    }
}

/// A Pacemaker configuration: what the three renderers share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cib {
    /// Notes on the whole configuration: what has no equivalent, what
    /// corosync.conf needs. Rendered first, as comments.
    pub notes: Vec<String>,
    /// `uname`s, in ha.cf order.
    pub nodes: Vec<String>,
    /// `crm_config` cluster properties, in order.
    pub properties: Vec<(String, String)>,
    /// `rsc_defaults` meta attributes.
    pub rsc_defaults: Vec<(String, String)>,
    /// Top-level resources, in order: fencing, ping clone, DRBD clones, groups.
    pub resources: Vec<Resource>,
    pub constraints: Vec<Constraint>,
}

/// A top-level resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Primitive(Primitive),
    Group {
        id: String,
        members: Vec<Primitive>,
        notes: Vec<String>,
    },
    Clone {
        id: String,
        promotable: bool,
        meta: Vec<(String, String)>,
        child: Primitive,
        notes: Vec<String>,
    },
}

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Primitive(p) => &p.id,
            Resource::Group { id, .. } | Resource::Clone { id, .. } => id,
        }
    }
}

/// One resource agent instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primitive {
    pub id: String,
    /// `ocf`, `lsb`, `stonith`.
    pub class: String,
    /// For `ocf` only.
    pub provider: Option<String>,
    pub kind: String,
    /// `instance_attributes`, in order.
    pub params: Vec<(String, String)>,
    /// `meta_attributes`, in order.
    pub meta: Vec<(String, String)>,
    pub ops: Vec<Op>,
    /// Comments rendered before it (what did not carry over).
    pub notes: Vec<String>,
}

impl Primitive {
    /// `ocf:heartbeat:IPaddr2`, `lsb:apache2`, `stonith:fence_ipmilan`.
    pub fn agent(&self) -> String {
        match &self.provider {
            Some(p) => format!("{}:{}:{}", self.class, p, self.kind),
            None => format!("{}:{}", self.class, self.kind),
        }
    }
}

/// An operation: its interval and timeout in seconds (0: not recurring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// `start`, `stop`, `monitor`.
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// `on-fail` when not Pacemaker's default.
    pub on_fail: Option<String>,
    /// For the Promoted role only (`role="Promoted"`).
    pub promoted: bool,
}

/// A constraint score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    Value(i64),
    Infinity,
    MinusInfinity,
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Score::Value(v) => write!(f, "{v}"),
            Score::Infinity => f.write_str("INFINITY"),
            Score::MinusInfinity => f.write_str("-INFINITY"),
        }
    }
}

/// One expression of a location rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `ATTR` is not set on the node.
    NotDefined(String),
    /// `ATTR lte VALUE` (numbers).
    Lte(String, i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `rsc` on `node` scores `score` (with `role`: only for that role).
    Location {
        id: String,
        rsc: String,
        node: String,
        score: Score,
        promoted: bool,
    },
    /// `rsc` scores `score` on nodes where any of `any` holds.
    Rule {
        id: String,
        rsc: String,
        score: Score,
        any: Vec<Expr>,
    },
    /// `rsc` runs where `with` runs (with `with_promoted`: where it is Promoted).
    Colocation {
        id: String,
        rsc: String,
        with: String,
        with_promoted: bool,
        score: Score,
    },
    /// `first`'s `first_action` before `then`'s `then_action` (Mandatory).
    Order {
        id: String,
        first: String,
        first_action: String,
        then: String,
        then_action: String,
    },
}

/// Makes XML IDs (NCName: a letter or `_`, then letters, digits, `.`, `-`,
/// `_`) unique in one document.
#[derive(Debug, Default)]
pub struct Ids(BTreeSet<String>);

impl Ids {
    /// A valid, unused ID from `base`; `base-2`, `base-3`... when taken.
    pub fn make(&mut self, base: &str) -> String {
        let id = xml_id(base);
        let mut candidate = id.clone();
        let mut n = 2;
        while self.0.contains(&candidate) {
            candidate = format!("{id}-{n}");
            n += 1;
        }
        self.0.insert(candidate.clone());
        candidate
    }

    /// Marks `id` used (an ID given by the model).
    pub fn reserve(&mut self, id: &str) {
        self.0.insert(id.to_string());
    }
}

/// `s` as an XML ID: invalid characters become `-`, runs of `-` one, and an
/// ID that would not start with a letter or `_` gets an `r-` prefix.
pub fn xml_id(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_matches('-').to_string();
    match out.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => out,
        _ => format!("r-{out}"),
    }
}

/// A duration as Pacemaker writes it: whole seconds (`10s`), else ms.
pub fn pcmk_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The agents hbd ships (`resources/`), installed for Pacemaker as
/// `ocf:hbd:NAME` (they are OCF RA API 1.0 agents too).
pub const HBD_PROVIDER: &str = "hbd";
const HBD_AGENTS: &[&str] = &["mysqld", "daemon"];

/// Builds the Pacemaker model of `config`.
pub fn pacemaker(config: &Config) -> Cib {
    let mut b = Builder {
        config,
        ids: Ids::default(),
        cib: Cib {
            nodes: config.ha.nodes.clone(),
            ..Cib::default()
        },
    };
    b.cluster_options();
    b.fencing();
    let ping = b.ping();
    let drbd = b.drbd_clones();
    for (i, g) in config.groups.iter().enumerate() {
        b.group(i, g, &drbd, ping);
    }
    b.unmapped();
    b.cib
}

struct Builder<'a> {
    config: &'a Config,
    ids: Ids,
    cib: Cib,
}

/// A DRBD resource's clone: the drbd.conf name, the clone's ID.
struct DrbdClone {
    res: String,
    clone: String,
}

impl Builder<'_> {
    fn note(&mut self, s: impl Into<String>) {
        self.cib.notes.push(s.into());
    }

    fn property(&mut self, k: &str, v: impl Into<String>) {
        self.cib.properties.push((k.into(), v.into()));
    }

    /// Cluster properties and resource defaults: fencing, quorum,
    /// auto_failback, failure_timeout.
    fn cluster_options(&mut self) {
        let c = self.config;
        let fencing = !c.ha.stonith_hosts.is_empty();
        self.property("stonith-enabled", if fencing { "true" } else { "false" });
        if fencing {
            self.property("stonith-action", c.fencing.action.as_str());
            self.property("stonith-timeout", pcmk_duration(c.fencing.timeout));
        } else {
            self.note(
                "No stonith_host in ha.cf: stonith-enabled=false. Pacemaker (and DRBD's \
                 fencing resource-and-stonith) wants fencing; add stonith resources \
                 (fence-agents) before going to production.",
            );
        }
        // Quorum. hbd without a witness runs groups without quorum
        // (heartbeat's behaviour); Pacemaker's equivalent for two nodes is
        // votequorum's two_node in corosync.conf, which keeps quorum on the
        // survivor (and implies wait_for_all), so no-quorum-policy can stay
        // Pacemaker's safe default.
        self.property("no-quorum-policy", "stop");
        match (&c.quorum.witness, c.ha.nodes.len()) {
            (Some(w), _) => self.note(format!(
                "The quorum witness `{w}` has no CIB equivalent: run corosync-qnetd on {w} \
                 and corosync-qdevice on the nodes (corosync.conf quorum {{ device {{ model: \
                 net; net {{ host: {w}; algorithm: ffsplit }} }} }})."
            )),
            (None, 2) => self.note(
                "Two nodes: corosync.conf needs quorum { provider: corosync_votequorum; \
                 two_node: 1 } so that the survivor keeps quorum (two_node implies \
                 wait_for_all: the first start needs both nodes, unlike heartbeat's \
                 initdead). Without fencing, two_node lets both sides run the groups after a \
                 partition.",
            ),
            (None, _) => {}
        }
        // auto_failback: on (and heartbeat's legacy default, on unless a
        // peer says off; every node shares this file) lets the location
        // preference pull the group back; off keeps it where it runs.
        let stickiness = match c.ha.auto_failback {
            AutoFailback::On | AutoFailback::Legacy => "0",
            AutoFailback::Off => "INFINITY",
        };
        self.cib
            .rsc_defaults
            .push(("resource-stickiness".into(), stickiness.into()));
        // [groups] failure_timeout: how long a failure bars the node.
        let ft = c.failure_timeout.map_or("0".to_string(), pcmk_duration);
        self.cib.rsc_defaults.push(("failure-timeout".into(), ft));
        self.note(format!(
            "Membership timing (corosync.conf totem, not the CIB): hbd's keepalive {} and \
             deadtime {} correspond to corosync's token timeout (token: {}); authkeys is \
             replaced by corosync's /etc/corosync/authkey (corosync-keygen).",
            pcmk_duration(c.ha.keepalive),
            pcmk_duration(c.ha.deadtime),
            c.ha.deadtime.as_millis()
        ));
    }

    /// ha.cf `stonith_host` lines: one `stonith:` primitive each.
    fn fencing(&mut self) {
        let c = self.config;
        for (n, (d, at)) in c.ha.stonith_hosts.iter().enumerate() {
            let kind = d.agent.rsplit('/').next().unwrap_or(&d.agent).to_string();
            let id = self.ids.make(&format!("fence-{}-{}", kind, n + 1));
            let mut notes = vec![format!(
                "{at}: stonith_host {} {}",
                d.from.as_deref().unwrap_or("*"),
                d.written
            )];
            if d.agent.starts_with('/') {
                notes.push(format!(
                    "{} is a path: Pacemaker runs fence agents from /usr/sbin by name; \
                     install it there as {kind}",
                    d.agent
                ));
            }
            let mut params = d.options.clone();
            if !d.targets.is_empty() {
                if d.targets.iter().all(|t| t.plug.as_deref() == Some(&t.node)) {
                    let list: Vec<&str> = d.targets.iter().map(|t| t.node.as_str()).collect();
                    params.push(("pcmk_host_list".into(), list.join(",")));
                } else if d.targets.iter().all(|t| t.plug.is_none()) {
                    let list: Vec<&str> = d.targets.iter().map(|t| t.node.as_str()).collect();
                    params.push(("pcmk_host_list".into(), list.join(",")));
                } else {
                    let map: Vec<String> = d
                        .targets
                        .iter()
                        .map(|t| format!("{}:{}", t.node, t.plug.as_deref().unwrap_or(&t.node)))
                        .collect();
                    params.push(("pcmk_host_map".into(), map.join(";")));
                }
                params.push(("pcmk_host_check".into(), "static-list".into()));
            }
            if d.options
                .iter()
                .any(|(k, _)| matches!(k.as_str(), "password" | "passwd" | "community"))
            {
                notes.push(
                    "the device's password is stored in the CIB in clear; cibsecret can \
                     keep it out"
                        .into(),
                );
            }
            self.cib.resources.push(Resource::Primitive(Primitive {
                id: id.clone(),
                class: "stonith".into(),
                provider: None,
                kind,
                params,
                meta: Vec::new(),
                ops: vec![Op {
                    name: "monitor".into(),
                    interval: Duration::from_secs(60),
                    timeout: c.fencing.timeout,
                    on_fail: None,
                    promoted: false,
                }],
                notes,
            }));
            // Where the agent runs: hbd runs it on `from` (any node for `*`);
            // a device never runs on a node it fences.
            for node in &c.ha.nodes {
                let banned = match &d.from {
                    Some(from) => from != node,
                    None => d.targets.iter().any(|t| &t.node == node),
                };
                if banned {
                    let cid = self.ids.make(&format!("location-{id}-avoid-{node}"));
                    self.cib.constraints.push(Constraint::Location {
                        id: cid,
                        rsc: id.clone(),
                        node: node.clone(),
                        score: Score::MinusInfinity,
                        promoted: false,
                    });
                }
            }
        }
    }

    /// ha.cf `ping`/`ping_group`: an `ocf:pacemaker:ping` clone. Returns
    /// whether groups get the connectivity rule (the tiebreaker is on).
    fn ping(&mut self) -> bool {
        let c = self.config;
        let mut hosts: Vec<String> = c.ha.ping.iter().map(|(a, _)| a.to_string()).collect();
        let mut notes = Vec::new();
        for g in &c.ha.ping_groups {
            hosts.extend(g.addrs.iter().map(|a| a.to_string()));
            notes.push(format!(
                "ping_group {} counted as one node when any of its addresses answers; \
                 ocf:pacemaker:ping counts each address",
                g.name
            ));
        }
        if hosts.is_empty() {
            return false;
        }
        let id = self.ids.make("ping");
        let clone = self.ids.make("ping-clone");
        let child = Primitive {
            id,
            class: "ocf".into(),
            provider: Some("pacemaker".into()),
            kind: "ping".into(),
            params: vec![
                ("host_list".into(), hosts.join(" ")),
                ("multiplier".into(), PING_MULTIPLIER.to_string()),
                ("dampen".into(), pcmk_duration(c.tiebreaker.settle)),
            ],
            meta: Vec::new(),
            ops: vec![Op {
                name: "monitor".into(),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(60),
                on_fail: None,
                promoted: false,
            }],
            notes: Vec::new(),
        };
        if !c.tiebreaker.ping {
            notes.push(
                "cluster.toml [tiebreaker] ping = false: the ping nodes are watched but no \
                 group follows them (no location rule)"
                    .into(),
            );
        }
        self.cib.resources.push(Resource::Clone {
            id: clone,
            promotable: false,
            meta: Vec::new(),
            child,
            notes,
        });
        c.tiebreaker.ping
    }

    /// The DRBD resources the groups promote (`drbddisk::RES`): one
    /// `ocf:linbit:drbd` promotable clone each.
    fn drbd_clones(&mut self) -> Vec<DrbdClone> {
        let c = self.config;
        let mut used: Vec<String> = Vec::new();
        for g in &c.groups {
            for r in &g.resources {
                if let AgentKind::Drbddisk(a) = &r.kind {
                    if !used.contains(&a.res) {
                        used.push(a.res.clone());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for res in used {
            let id = self.ids.make(&format!("drbd-{res}"));
            let clone = self.ids.make(&format!("drbd-{res}-clone"));
            let mut notes = vec![format!(
                "drbddisk::{res}: hbd replicates {res} in user space (hbd-disk); \
                 ocf:linbit:drbd needs the DRBD kernel module and drbd-utils (DRBD 9, \
                 drbd.conf unchanged) on every node"
            )];
            if let Some(r) = c.drbd.as_ref().and_then(|d| d.resource(&res)) {
                if r.tls {
                    notes.push(format!(
                        "{res}: hbd seals the replication link (net {{ tls yes }}); the DRBD \
                         kernel module does so from DRBD 9.2 with tlshd, else use a VPN"
                    ));
                }
            } else {
                notes.push(format!("{res} is not in drbd.conf"));
            }
            let child = Primitive {
                id,
                class: "ocf".into(),
                provider: Some("linbit".into()),
                kind: "drbd".into(),
                params: vec![("drbd_resource".into(), res.clone())],
                meta: Vec::new(),
                ops: vec![
                    Op {
                        name: "monitor".into(),
                        interval: Duration::from_secs(29),
                        timeout: Duration::from_secs(20),
                        on_fail: None,
                        promoted: false,
                    },
                    // A second monitor for the Promoted role, at another
                    // interval (Pacemaker tells them apart by interval).
                    Op {
                        name: "monitor".into(),
                        interval: Duration::from_secs(31),
                        timeout: Duration::from_secs(20),
                        on_fail: None,
                        promoted: true,
                    },
                ],
                notes: Vec::new(),
            };
            self.cib.resources.push(Resource::Clone {
                id: clone.clone(),
                promotable: true,
                meta: vec![
                    ("promoted-max".into(), "1".into()),
                    ("promoted-node-max".into(), "1".into()),
                    ("clone-max".into(), "2".into()),
                    ("clone-node-max".into(), "1".into()),
                    ("notify".into(), "true".into()),
                ],
                child,
                notes,
            });
            out.push(DrbdClone { res, clone });
        }
        if let Some(d) = &c.drbd {
            for r in &d.resources {
                if !out.iter().any(|o| o.res == r.name) {
                    self.note(format!(
                        "drbd.conf resource {} is promoted by no haresources group \
                         (no drbddisk::{}): not exported",
                        r.name, r.name
                    ));
                }
            }
        }
        out
    }

    /// One haresources line.
    fn group(&mut self, index: usize, g: &GroupConfig, drbd: &[DrbdClone], ping: bool) {
        let c = self.config;
        let mut members: Vec<Primitive> = Vec::new();
        let mut notes = vec![format!("{}: {} {}", g.at, g.home, specs(g))];
        // The drbddisk resources, and the index in `members` of the
        // resource that followed each (its start waits for the promotion).
        let mut promotes: Vec<(String, Option<usize>)> = Vec::new();
        // Index in `members` of each haresources resource (None: not a member).
        let mut member_of: Vec<Option<usize>> = Vec::new();
        for r in &g.resources {
            match &r.kind {
                AgentKind::Drbddisk(a) => {
                    let clone = drbd
                        .iter()
                        .find(|d| d.res == a.res)
                        .map(|d| d.clone.clone())
                        .unwrap_or_default();
                    promotes.push((clone, None));
                    member_of.push(None);
                }
                AgentKind::Mon => {
                    notes.push(
                        "mon: Pacemaker runs the monitor operations of every resource \
                         itself; nothing to export"
                            .into(),
                    );
                    member_of.push(None);
                }
                _ => {
                    let p = self.primitive(r);
                    for pr in promotes.iter_mut().filter(|p| p.1.is_none()) {
                        pr.1 = Some(members.len());
                    }
                    member_of.push(Some(members.len()));
                    members.push(p);
                }
            }
        }
        let checks: Vec<&CheckConfig> = c.checks.iter().filter(|k| k.group == index).collect();
        for k in checks {
            self.attach_check(k, g, &member_of, &mut members, &mut notes);
        }
        let group_id = match members.first() {
            Some(first) => self.ids.make(&format!("group-{}", first.id)),
            None => {
                self.note(format!(
                    "{}: the group {} has no resource besides drbddisk/mon: only its DRBD \
                     promotion is exported",
                    g.at, g.id
                ));
                String::new()
            }
        };
        // Where the group prefers to run.
        if !group_id.is_empty() {
            let id = self.ids.make(&format!("location-{group_id}-{}", g.home));
            self.cib.constraints.push(Constraint::Location {
                id,
                rsc: group_id.clone(),
                node: g.home.clone(),
                score: Score::Value(PREFERRED_SCORE),
                promoted: false,
            });
        }
        for (clone, next) in &promotes {
            // The promotion prefers the group's node too; the agent's own
            // promotion scores (crm_master) add to it.
            let id = self
                .ids
                .make(&format!("location-{clone}-promoted-{}", g.home));
            self.cib.constraints.push(Constraint::Location {
                id,
                rsc: clone.clone(),
                node: g.home.clone(),
                score: Score::Value(PREFERRED_SCORE),
                promoted: true,
            });
            if group_id.is_empty() {
                continue;
            }
            let id = self
                .ids
                .make(&format!("colocation-{group_id}-with-{clone}"));
            self.cib.constraints.push(Constraint::Colocation {
                id,
                rsc: group_id.clone(),
                with: clone.clone(),
                with_promoted: true,
                score: Score::Infinity,
            });
            // drbddisk last in the line: nothing waited for it in hbd
            // either, but Pacemaker must still not start the group on the
            // Unpromoted side: the group's start waits.
            let then = next.map_or(group_id.clone(), |i| members[i].id.clone());
            let id = self.ids.make(&format!("order-{clone}-then-{then}"));
            self.cib.constraints.push(Constraint::Order {
                id,
                first: clone.clone(),
                first_action: "promote".into(),
                then,
                then_action: "start".into(),
            });
        }
        if !group_id.is_empty() && ping {
            let id = self.ids.make(&format!("location-{group_id}-connected"));
            self.cib.constraints.push(Constraint::Rule {
                id,
                rsc: group_id.clone(),
                score: Score::MinusInfinity,
                any: vec![
                    Expr::NotDefined(PING_ATTRIBUTE.into()),
                    Expr::Lte(PING_ATTRIBUTE.into(), 0),
                ],
            });
        }
        for j in c.jobs.iter().filter(|j| j.group == index) {
            notes.push(format!(
                "{}: [[job]] {} ({} `{}`) has no Pacemaker equivalent: run it from cron or a \
                 systemd timer on every node, guarded by `crm_resource --locate --resource {} \
                 | grep -q \"$(uname -n)\"` so it runs only where the group runs",
                j.at, j.name, j.schedule, j.command, group_id
            ));
        }
        if !group_id.is_empty() {
            self.cib.resources.push(Resource::Group {
                id: group_id,
                members,
                notes,
            });
        } else {
            self.cib.notes.extend(notes);
        }
    }

    /// A resource of a group, not drbddisk or mon.
    fn primitive(&mut self, r: &crate::agents::Resource) -> Primitive {
        let (name, _) = crate::agents::split_spec(&r.spec);
        let mut notes = Vec::new();
        let mut params: Vec<(String, String)> = Vec::new();
        let (class, provider, kind, base) = match &r.kind {
            AgentKind::IpAddr(a) => {
                params.push(("ip".into(), a.addr.to_string()));
                if let Some(p) = a.prefix {
                    params.push(("cidr_netmask".into(), p.to_string()));
                }
                if let Some(i) = &a.iface {
                    params.push(("nic".into(), i.clone()));
                }
                if let Some(label) = a.label.as_deref().and_then(|l| l.split_once(':')) {
                    params.push(("iflabel".into(), label.1.to_string()));
                }
                if let Some(b) = a.broadcast {
                    params.push(("broadcast".into(), b.to_string()));
                }
                if name != "IPaddr2" {
                    notes.push(format!(
                        "{}: IPaddr becomes ocf:heartbeat:IPaddr2 (same address, netlink)",
                        r.spec
                    ));
                }
                (
                    "ocf",
                    Some("heartbeat"),
                    "IPaddr2",
                    format!("ip-{}", a.addr),
                )
            }
            AgentKind::Filesystem(a) => {
                params.push(("device".into(), a.device.display().to_string()));
                params.push(("directory".into(), a.dir.display().to_string()));
                if let Some(t) = &a.fstype {
                    params.push(("fstype".into(), t.clone()));
                }
                if let Some(o) = &a.options {
                    params.push(("options".into(), o.clone()));
                }
                match r.options.fsck {
                    crate::agents::Fsck::Auto => {}
                    crate::agents::Fsck::Force => params.push(("run_fsck".into(), "force".into())),
                    crate::agents::Fsck::Never => params.push(("run_fsck".into(), "no".into())),
                }
                let dir = a.dir.display().to_string();
                ("ocf", Some("heartbeat"), "Filesystem", format!("fs-{dir}"))
            }
            AgentKind::Heartbeat { path, args: hargs }
                if HBD_AGENTS.contains(&name)
                    && !path.starts_with(self.config.dir.join("resource.d")) =>
            {
                params = hbd_agent_params(name, hargs);
                ("ocf", Some(HBD_PROVIDER), name, name.to_string())
            }
            AgentKind::Heartbeat { path, args: hargs } => {
                notes.push(format!(
                    "{} is a heartbeat-style script ({}{}): Pacemaker runs it as lsb:{name} \
                     (from /etc/init.d, start/stop/status, no arguments){}",
                    r.spec,
                    path.display(),
                    if hargs.is_empty() {
                        ""
                    } else {
                        " with arguments"
                    },
                    if hargs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; its arguments {} are lost: wrap it in an OCF agent",
                            hargs.join(" ")
                        )
                    }
                ));
                ("lsb", None, name, name.to_string())
            }
            AgentKind::Lsb { .. } => ("lsb", None, name, name.to_string()),
            AgentKind::Ocf {
                provider,
                kind,
                params: p,
                ..
            } => {
                params = p.clone();
                (
                    "ocf",
                    Some(provider.as_str()),
                    kind.as_str(),
                    kind.to_string(),
                )
            }
            AgentKind::Drbddisk(_) | AgentKind::Mon => {
                unreachable!("drbddisk and mon are handled by the group")
            }
        };
        let id = self.ids.make(&base);
        let o = &r.options;
        Primitive {
            id,
            class: class.into(),
            provider: provider.map(str::to_string),
            kind: kind.to_string(),
            params,
            meta: Vec::new(),
            ops: vec![
                Op {
                    name: "start".into(),
                    interval: Duration::ZERO,
                    timeout: o.start_timeout,
                    on_fail: None,
                    promoted: false,
                },
                Op {
                    name: "stop".into(),
                    interval: Duration::ZERO,
                    timeout: o.stop_timeout,
                    on_fail: None,
                    promoted: false,
                },
            ],
            notes,
        }
    }

    /// A `[[check]]` of group `g`: a monitor operation of the resource it
    /// watches, or a note when none matches.
    fn attach_check(
        &mut self,
        k: &CheckConfig,
        g: &GroupConfig,
        member_of: &[Option<usize>],
        members: &mut [Primitive],
        notes: &mut Vec<String>,
    ) {
        let target = match k.action {
            CheckAction::Restart { resource, .. } => member_of.get(resource).copied().flatten(),
            _ => None,
        }
        .or_else(|| {
            g.resources
                .iter()
                .enumerate()
                .find(|(_, r)| watches(&k.kind, r))
                .and_then(|(i, _)| member_of.get(i).copied().flatten())
        });
        let Some(i) = target else {
            notes.push(format!(
                "{}: [[check]] {} ({}) watches no resource of this group: Pacemaker \
                 checks a resource with its agent's monitor action; add a monitor \
                 operation to the resource it is about, or an agent that probes it",
                k.at,
                k.name,
                describe(&k.kind)
            ));
            return;
        };
        let p = &mut members[i];
        if p.ops
            .iter()
            .any(|o| o.name == "monitor" && o.interval == k.interval)
        {
            p.notes.push(format!(
                "{}: [[check]] {}: a monitor at {} exists already",
                k.at,
                k.name,
                pcmk_duration(k.interval)
            ));
            return;
        }
        let on_fail = match k.action {
            CheckAction::Notify => Some("ignore".to_string()),
            _ => None,
        };
        p.ops.push(Op {
            name: "monitor".into(),
            interval: k.interval,
            timeout: k.timeout,
            on_fail,
            promoted: false,
        });
        let mut note = format!(
            "{}: [[check]] {} ({}) is this monitor: the agent's monitor action replaces \
             the check's own probe",
            k.at,
            k.name,
            describe(&k.kind)
        );
        if k.fall > 1 {
            note.push_str(&format!(
                "; fall = {} has no equivalent (Pacemaker acts on the first failed monitor)",
                k.fall
            ));
        }
        match k.action {
            CheckAction::Notify => note.push_str(
                "; action notify: on-fail=ignore (use a Pacemaker alert agent for the \
                 notification)",
            ),
            CheckAction::Move => {
                set_meta(p, "migration-threshold", "1");
            }
            CheckAction::Restart { max, window, .. } => {
                set_meta(p, "migration-threshold", &(max + 1).to_string());
                set_meta(p, "failure-timeout", &pcmk_duration(window));
            }
        }
        p.notes.push(note);
    }

    /// What has no Pacemaker equivalent and belongs to no group.
    fn unmapped(&mut self) {
        let c = self.config;
        if let Some(k) = &c.keepalived {
            for i in &k.instances {
                self.note(format!(
                    "keepalived.conf vrrp_instance {} (vrid {} on {}): VRRP has no Pacemaker \
                     equivalent; keep keepalived running beside Pacemaker, or move the address \
                     into a group as ocf:heartbeat:IPaddr2",
                    i.name, i.vrid, i.interface
                ));
            }
        }
        if let Some(n) = &c.notify {
            self.note(format!(
                "[notify] command {}: use a Pacemaker alert (pcs alert create path=...); \
                 alert agents get CRM_alert_* variables, not HBD_*",
                n.command
            ));
        }
        for r in c.ha.respawn.iter().filter(|r| r.builtin.is_none()) {
            self.note(format!(
                "{}: respawn {} {}: run it as a systemd service (Restart=always) on every node",
                r.at, r.user, r.command
            ));
        }
        if let Some((dev, at)) = &c.ha.watchdog {
            self.note(format!(
                "{at}: watchdog {}: Pacemaker's self-fencing is sbd (watchdog-only sbd with \
                 stonith-watchdog-timeout)",
                dev.display()
            ));
        }
    }
}

fn set_meta(p: &mut Primitive, k: &str, v: &str) {
    match p.meta.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v.to_string(),
        None => p.meta.push((k.to_string(), v.to_string())),
    }
}

/// The haresources line's resources, as written.
fn specs(g: &GroupConfig) -> String {
    g.resources
        .iter()
        .map(|r| r.spec.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A check, short, for notes.
fn describe(k: &CheckKind) -> String {
    match k {
        CheckKind::Tcp { host, port } => format!("tcp {host}:{port}"),
        CheckKind::Http { url, .. } => format!("http {url}"),
        CheckKind::Process { pidfile, name } => format!(
            "process {}",
            name.clone()
                .or_else(|| pidfile.as_ref().map(|p| p.display().to_string()))
                .unwrap_or_default()
        ),
        CheckKind::Exec { command, .. } => format!("exec `{command}`"),
        CheckKind::Mysql { .. } => "mysql".into(),
    }
}

/// Whether check `k` is about resource `r`: a mysql check about a MySQL
/// server, a process check about the program the resource runs, a tcp
/// check about the server on its port, an exec check naming it.
fn watches(k: &CheckKind, r: &crate::agents::Resource) -> bool {
    let (name, args) = crate::agents::split_spec(&r.spec);
    let is_mysql = matches!(name, "mysqld" | "mysql" | "mariadb" | "mysqld-max")
        || matches!(&r.kind, AgentKind::Ocf { kind, .. } if kind == "mysql");
    // The program the resource runs (daemon's COMMAND, else the agent name).
    let program: String = if name == "daemon" {
        args.iter()
            .filter(|a| !a.starts_with("--port="))
            .nth(1)
            .map(|c| c.rsplit('/').next().unwrap_or(c).to_string())
            .unwrap_or_default()
    } else {
        name.to_string()
    };
    let port_of = || -> Option<u16> {
        if name == "daemon" {
            let p = args.iter().find_map(|a| a.strip_prefix("--port="))?;
            p.rsplit(':').next()?.parse().ok()
        } else if is_mysql {
            Some(
                args.iter()
                    .find_map(|a| a.strip_prefix("port="))
                    .or_else(|| args.get(3).copied().filter(|a| !a.contains('=')))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(3306),
            )
        } else {
            None
        }
    };
    match k {
        CheckKind::Mysql { .. } => is_mysql,
        CheckKind::Process { name: Some(n), .. } => {
            *n == program || (is_mysql && matches!(n.as_str(), "mysqld" | "mariadbd"))
        }
        CheckKind::Process {
            pidfile: Some(p), ..
        } => args.iter().any(|a| std::path::Path::new(a) == p),
        CheckKind::Process { .. } => false,
        CheckKind::Tcp { port, .. } => port_of() == Some(*port),
        CheckKind::Exec { command, .. } => command
            .split_whitespace()
            .any(|w| !program.is_empty() && (w == program || (is_mysql && w == "mysqld"))),
        CheckKind::Http { .. } => false,
    }
}

/// hbd's mysqld/daemon heartbeat-style arguments as their OCF parameters
/// (the agents' own headers: `mysqld::DATADIR[::SOCKET[::PIDFILE[::PORT]]]`
/// with `key=value` anywhere; `daemon::[--port=P::]PIDFILE::COMMAND::ARG...`).
fn hbd_agent_params(name: &str, args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if name == "mysqld" {
        let positional = ["datadir", "socket", "pid_file", "port"];
        let mut next = 0;
        for a in args {
            match a.split_once('=') {
                Some((k, v)) => out.push((k.to_string(), v.to_string())),
                None => {
                    if let Some(n) = positional.get(next) {
                        out.push((n.to_string(), a.clone()));
                        next += 1;
                    }
                }
            }
        }
    } else {
        let mut rest: &[String] = args;
        if let Some(p) = rest.first().and_then(|a| a.strip_prefix("--port=")) {
            out.push(("port".into(), p.to_string()));
            rest = &rest[1..];
        }
        if let Some((pidfile, command)) = rest.split_first() {
            out.insert(0, ("pidfile".into(), pidfile.clone()));
            // The agent splits `command` into words as xargs does.
            let words: Vec<String> = command.iter().map(|w| xargs_quote(w)).collect();
            out.insert(1, ("command".into(), words.join(" ")));
        }
    }
    out
}

/// One word as xargs reads it back.
fn xargs_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '\\'))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests;
