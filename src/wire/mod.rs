//! The cluster datagram: a fixed header, a bincode body and an authkeys MAC.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      'h'      |      'b'      |      'd'      |    version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    key id     |    method     |          body length          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 body (bincode `Message`) ...                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  MAC over label + header + body (length fixed by method) ...  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The MAC's input starts with the fixed label `"hbd v3 datagram\0"` and
//! its key is derived from the authkeys secret for datagrams alone
//! ([`auth::Purpose::Datagram`]), so no tag hbd makes for another protocol
//! is ever a valid datagram. Body length is big-endian. The datagram's length must equal
//! `8 + body length + MAC length` exactly. The MAC is checked before the body is
//! decoded, so unauthenticated bytes never reach bincode.

pub mod auth;
mod packet;
#[cfg(test)]
mod tests;

pub use auth::{AuthKey, AuthKeys, AuthMethod};
pub use packet::{decode, encode};

use serde::{Deserialize, Serialize};

/// Largest datagram hbd sends or accepts: one Ethernet MTU less IP and UDP headers,
/// so a keepalive never fragments.
pub const MAX_DATAGRAM: usize = 1472;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 8;
/// First three bytes of every datagram.
pub const MAGIC: [u8; 3] = *b"hbd";
/// Wire version carried in byte 3. Version 2 (issue 13) added the group
/// report's `witness` and `ping` and the entry's `served`; version 3
/// (issue 14) MACs `"hbd v3 datagram\0" || header || body` with a key
/// derived from the secret for datagrams alone ([`auth::Purpose`]). Nodes
/// of different versions drop each other's datagrams as malformed.
pub const VERSION: u8 = 3;
/// Longest node or cluster name on the wire (heartbeat allows 100; hostnames stop at 64).
pub const MAX_NAME: usize = 64;

/// One cluster message. New body kinds are appended to [`Body`] so older
/// variants keep their bincode index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The cluster name (`cluster.toml` `[cluster] name`): another cluster's traffic
    /// on the same LAN and port is dropped even when it shares a key.
    pub cluster: String,
    /// Sending node, as in `ha.cf` `node`.
    pub from: String,
    /// The sender's incarnation (heartbeat's generation): grows at every start.
    pub incarnation: u64,
    /// Per-incarnation sequence number, +1 per datagram sent.
    pub seq: u64,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// "I am alive", sent every `keepalive` on every medium.
    Keepalive(Keepalive),
    /// Orderly shutdown: peers declare the sender dead at once instead of
    /// waiting for `deadtime`.
    Leaving,
    /// The sender's view of the resource groups (see `groups`): sent when it
    /// changes and every keepalive.
    Groups(GroupReport),
    /// The built-in peer outdater (heartbeat's dopd; DRBD resource-level
    /// fencing): asks node `to` to outdate its copy of a replicated
    /// resource, or answers such a request. Sent on every medium, repeated
    /// until answered; answering is idempotent.
    Outdate(Outdate),
}

/// A request of the built-in outdater, or its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outdate {
    /// The node asked (a request) or the node that asked (an answer).
    pub to: String,
    /// The drbd.conf resource.
    pub resource: String,
    /// Chosen by the asker (per incarnation); the answer repeats it.
    pub id: u64,
    /// `None`: a request. `Some`: the answer.
    pub answer: Option<OutdateAnswer>,
}

/// The asked node's answer: a DRBD 8.4 fence-peer exit code (3 the disk
/// is Inconsistent, 4 it is Outdated now, 5 it could not be outdated, 6 it
/// is Primary) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutdateAnswer {
    pub code: u8,
    pub message: String,
}

/// One node's resource-group report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The sender has probed its resources: the states below are true. Until
    /// then it may hold anything, and nothing may start anywhere.
    pub ready: bool,
    /// The sender shuts down: it gives every group up and takes none.
    pub leaving: bool,
    pub groups: Vec<GroupEntry>,
    /// For each job the sender ran (or skipped), the last scheduled time
    /// (unix seconds): the next holder of its group never runs it again.
    pub marks: Vec<JobMark>,
    /// This report's number (per incarnation, +1 per report sent).
    pub no: u64,
    /// For each peer, the number of the latest report received from it: a
    /// claimant uses a grant only while it knows the granter heard it less
    /// than a deadtime ago (the grant's lease).
    pub heard: Vec<Heard>,
    /// The sender is a quorum witness (`hbd --witness`): it runs no group,
    /// it only grants and votes.
    pub witness: bool,
    /// How many ping nodes (ha.cf `ping`, `ping_group`) the sender reaches,
    /// settled; `None` without ping nodes. The ping tiebreaker prefers the
    /// node that reaches more.
    pub ping: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    pub node: String,
    pub incarnation: u64,
    pub no: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMark {
    pub job: String,
    pub last: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// The group's id (its first resource as written in haresources).
    pub id: String,
    pub state: GroupState,
    /// Non-zero: the sender asks to start the group, with this claim number.
    pub claim: u32,
    /// The one node the sender lets start the group (itself included), and
    /// for which of its claims.
    pub grant: Option<Grant>,
    pub pref: Pref,
    /// The group's checks failed on the sender: it runs the group only when
    /// no healthy node can.
    pub unhealthy: bool,
    /// Bytes clients wrote to the group's disks on the sender while the
    /// disks had no peer: after a healed partition the holder that served
    /// clients keeps the group (its data is the newer).
    pub served: u64,
}

/// "You may start this group": answers one claim of one incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub node: String,
    pub incarnation: u64,
    pub claim: u32,
}

/// A group's state on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupState {
    Stopped,
    Starting,
    Started,
    Stopping,
    /// A start failed here and was rolled back: not started here again until
    /// `hbctl clear`.
    Failed,
    /// A stop failed: the group may still run here, so it starts nowhere else
    /// while this node is up.
    StopFailed,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Stopped => "stopped",
            GroupState::Starting => "starting",
            GroupState::Started => "started",
            GroupState::Stopping => "stopping",
            GroupState::Failed => "failed",
            GroupState::StopFailed => "stop-failed",
        }
    }

    /// Whether the group's resources may be running on the node.
    pub fn may_run(self) -> bool {
        matches!(
            self,
            GroupState::Starting
                | GroupState::Started
                | GroupState::Stopping
                | GroupState::StopFailed
        )
    }
}

/// An operator's wish for a group on one node, from `hbctl standby` and
/// `hbctl takeover`; the higher version wins between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pref {
    None,
    /// `standby`: run it elsewhere when another node can.
    Refuse(u32),
    /// `takeover`: run it here.
    Want(u32),
}

impl Pref {
    pub fn version(self) -> u32 {
        match self {
            Pref::None => 0,
            Pref::Refuse(v) | Pref::Want(v) => v,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keepalive {
    /// The sender's keepalive interval in milliseconds (for status and diagnostics).
    pub keepalive_ms: u32,
    /// The sender's deadtime in milliseconds.
    pub deadtime_ms: u32,
}

/// Why a datagram was not accepted. Every variant is a counter in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DropReason {
    /// Shorter than a header, bad magic or version, lengths that do not add up,
    /// or a body bincode cannot decode.
    Malformed,
    /// Longer than [`MAX_DATAGRAM`].
    Oversize,
    /// Unknown key id, method that does not match the key, or a MAC that does not verify.
    Forged,
    /// Authenticated, but for another cluster name.
    OtherCluster,
    /// Authenticated, from a node not in our `node` list.
    UnknownNode,
    /// Sequence number not newer than the last one seen from that node on that medium.
    Replay,
    /// From an older incarnation than the one we know (or one that already left).
    Stale,
    /// Our own datagram looped back (broadcast and multicast loop).
    Own,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::Malformed,
        DropReason::Oversize,
        DropReason::Forged,
        DropReason::OtherCluster,
        DropReason::UnknownNode,
        DropReason::Replay,
        DropReason::Stale,
        DropReason::Own,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Oversize => "oversize",
            DropReason::Forged => "forged",
            DropReason::OtherCluster => "other_cluster",
            DropReason::UnknownNode => "unknown_node",
            DropReason::Replay => "replay",
            DropReason::Stale => "stale",
            DropReason::Own => "own",
        }
    }
}

/// Errors of [`encode`] and [`decode`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("datagram of {len} bytes is longer than {max}")]
    Oversize { len: usize, max: usize },
    #[error("malformed datagram: {0}")]
    Malformed(&'static str),
    #[error("body does not decode: {0}")]
    Body(String),
    #[error("unknown key id {0}")]
    UnknownKey(u8),
    #[error("key {id} is {expected:?} but the datagram says method {got}")]
    MethodMismatch {
        id: u8,
        expected: AuthMethod,
        got: u8,
    },
    #[error("MAC does not verify")]
    BadMac,
    #[error("name longer than {MAX_NAME} bytes")]
    NameTooLong,
}

impl WireError {
    /// The status counter this error falls under.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            WireError::Oversize { .. } => DropReason::Oversize,
            WireError::Malformed(_) | WireError::Body(_) | WireError::NameTooLong => {
                DropReason::Malformed
            }
            WireError::UnknownKey(_) | WireError::MethodMismatch { .. } | WireError::BadMac => {
                DropReason::Forged
            }
        }
    }
}
