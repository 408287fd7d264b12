//! Why [`Resource::handle`] refuses a command. Each reason displays as DRBD
//! (`drbd_set_st_err_str`, `drbd/drbd_nl.c`) or hbd's device words it:
//! `hbctl disk` prints the text and the device sends it to its caller.

use super::*;

/// A command the machine refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Connect while connecting or connected.
    #[error("Device has a net-config (use disconnect first)")]
    HasNetConfig,
    /// Attach while attached.
    #[error("Device is attached to a disk (use detach first)")]
    Attached,
    /// No UpToDate data where the command needs it (here, or at the peer).
    #[error("Need access to UpToDate data")]
    NoUpToDateData,
    /// A resync or verify needs a connection (`Connected`).
    #[error("Need a connection to start verify or resync")]
    NotConnected,
    /// A resync runs already.
    #[error("resync already running")]
    ResyncRunning,
    /// Promote while the peer is Primary.
    #[error("peer is Primary")]
    PeerPrimary,
    /// A resync from here while the peer is Primary.
    #[error("peer is Primary: it must be the sync source")]
    PeerMustBeSource,
    /// invalidate-remote while the peer is Primary.
    #[error("peer is Primary: a Primary is never SyncTarget")]
    PeerNeverTarget,
    /// invalidate-remote with a diskless peer.
    #[error("peer disk Diskless")]
    PeerDiskless,
    /// A resync to this node while it is Primary.
    #[error("{}", HandshakeError::TargetIsPrimary.message())]
    TargetIsPrimary,
    /// The local disk's state does not allow it (`local disk Outdated`).
    #[error("local disk {0}")]
    LocalDisk(DiskState),
    /// Promote while this node is the target of a resync.
    #[error("local disk {0} (resync from the peer running)")]
    SyncTarget(DiskState),
    /// A forced promotion of data that cannot be forced.
    #[error("local disk {0} (cannot force)")]
    CannotForce(DiskState),
    /// Promote while the handshake is deciding (SS_IN_TRANSIENT_STATE).
    #[error("In transient state, retry after next state change ({0})")]
    Transient(ConnState),
    /// Promote under `fencing` with the peer not known Outdated.
    #[error("{}", FENCING_REFUSAL)]
    Fencing,
    /// Outdate a Primary.
    #[error("{}", REFUSE_OUTDATE_PRIMARY)]
    OutdatePrimary,
    /// Outdate while Connected (SS_CONNECTED_OUTDATES).
    #[error("{}", OUTDATE_CONNECTED)]
    OutdateConnected,
    /// The fence-peer handler says the peer is Primary, and so is this
    /// node: it cannot outdate itself.
    #[error("the fence-peer handler says the peer is Primary too")]
    FencePeerPrimary,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the ones hbd printed before they were typed.
    #[test]
    fn each_refusal_says_what_it_always_said() {
        for (r, text) in [
            (
                Refused::HasNetConfig,
                "Device has a net-config (use disconnect first)",
            ),
            (
                Refused::Attached,
                "Device is attached to a disk (use detach first)",
            ),
            (Refused::NoUpToDateData, "Need access to UpToDate data"),
            (
                Refused::NotConnected,
                "Need a connection to start verify or resync",
            ),
            (Refused::ResyncRunning, "resync already running"),
            (Refused::PeerPrimary, "peer is Primary"),
            (
                Refused::PeerMustBeSource,
                "peer is Primary: it must be the sync source",
            ),
            (
                Refused::PeerNeverTarget,
                "peer is Primary: a Primary is never SyncTarget",
            ),
            (Refused::PeerDiskless, "peer disk Diskless"),
            (
                Refused::TargetIsPrimary,
                "I shall become SyncTarget, but I am primary!",
            ),
            (
                Refused::LocalDisk(DiskState::Outdated),
                "local disk Outdated",
            ),
            (
                Refused::LocalDisk(DiskState::Diskless),
                "local disk Diskless",
            ),
            (
                Refused::SyncTarget(DiskState::Inconsistent),
                "local disk Inconsistent (resync from the peer running)",
            ),
            (
                Refused::CannotForce(DiskState::Outdated),
                "local disk Outdated (cannot force)",
            ),
            (
                Refused::Transient(ConnState::WFReportParams),
                "In transient state, retry after next state change (WFReportParams)",
            ),
            (
                Refused::Fencing,
                "Refusing to be Primary while peer is not outdated (fencing): the peer is \
                 not known to be Outdated and no fence-peer handler ran; use --force if you \
                 know the peer is down and outdated",
            ),
            (Refused::OutdatePrimary, "Refusing to outdate a Primary"),
            (
                Refused::OutdateConnected,
                "Refusing to be Outdated while Connected",
            ),
            (
                Refused::FencePeerPrimary,
                "the fence-peer handler says the peer is Primary too",
            ),
        ] {
            assert_eq!(r.to_string(), text, "{r:?}");
        }
    }
}
