//! VRRP advertisements on the wire, without I/O: VRRPv2 (RFC 3768) and
//! VRRPv3 (RFC 5798) over IPv4, with the IPv4 header around them, byte for
//! byte as keepalived 2.2.7 sends them (golden tests from real captures in
//! `tests/data/vrrp/`).
//!
//! # Layout
//!
//! ```text
//! IPv4: 45 c0 <total len> <id> 00 00 ff 70 <ip csum> <src> <dst 224.0.0.18>
//! VRRP: ver|type vrid prio count | v2: auth_type adver_int(s)  | v3: rsvd(4)|max_adver_int(12, cs)
//!       checksum | count × IPv4 address | v2 only: 8 bytes of auth data
//! ```
//!
//! The VRRP checksum covers the VRRP message only for v2; for v3 over IPv4 it
//! also covers the pseudo-header (src, dst, 0, 112, VRRP length) as keepalived
//! 2.2.x computes it by default ([`V3Checksum::PseudoHeader`]); RFC 9568's
//! form without the pseudo-header is [`V3Checksum::NoPseudoHeader`].
//!
//! [`Packet::decode`] never panics on arbitrary bytes: every malformed input is
//! a [`DecodeError`]. It checks what keepalived checks before looking at the
//! contents: IPv4 version, header length, exact total length (no trailing
//! bytes), header checksum, no fragment, protocol 112, TTL 255, VRRP version
//! and type, the length implied by the address count, the auth type (v2), a
//! non-zero interval and the VRRP checksum. Checks against the configuration
//! (VRID, addresses, interval, password) are [`Advert::check`]'s.

use std::net::Ipv4Addr;
use std::time::Duration;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// TTL of every advertisement, checked on receive.
pub const VRRP_TTL: u8 = 255;
/// TOS keepalived sends (precedence "internetwork control").
pub const VRRP_TOS: u8 = 0xc0;
/// The IPv4 multicast group of VRRP.
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Length of the IPv4 header this module writes (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the VRRP header before the addresses.
pub const VRRP_HEADER_LEN: usize = 8;
/// Length of the v2 authentication data.
pub const AUTH_DATA_LEN: usize = 8;
/// The largest v3 interval in centiseconds (12 bits).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: interval in seconds, authentication field.
    V2,
    /// RFC 5798: interval in centiseconds, no authentication.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// VRRPv2 authentication (type 2, IP AH, is refused as keepalived 2.x does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0; the 8 auth bytes are sent as zeros and ignored on receive.
    None,
    /// Type 1, simple text password, zero-padded to 8 bytes.
    Pass([u8; AUTH_DATA_LEN]),
}

impl Auth {
    /// PASS authentication from keepalived's `auth_pass`: truncated to 8
    /// bytes (keepalived does the same) and zero-padded.
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; AUTH_DATA_LEN];
        for (d, s) in data.iter_mut().zip(password.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(data)
    }

    fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

/// How the v3 checksum is computed over IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum V3Checksum {
    /// Pseudo-header + VRRP message: RFC 5798 as keepalived 2.2.x does it.
    #[default]
    PseudoHeader,
    /// VRRP message only: RFC 9568's IPv4 form.
    NoPseudoHeader,
}

/// One advertisement (type 1; type is the only one VRRP defines).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    /// 0: the master stops; 255: the address owner.
    pub priority: u8,
    /// The advertisement interval in the version's unit: seconds (1..=255) for
    /// v2, centiseconds (1..=4095) for v3. See [`Advert::interval`].
    pub adver_int: u16,
    /// The virtual addresses, in the order sent.
    pub addrs: Vec<Ipv4Addr>,
    /// v2 only; always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// The IPv4 header fields that vary (the rest are fixed: version 4, no
/// options, protocol 112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Header {
    pub tos: u8,
    pub id: u16,
    /// Flags and fragment offset; keepalived sends 0 (DF clear).
    pub flags_frag: u16,
    pub ttl: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// The header keepalived sends: TOS 0xc0, TTL 255, no flags.
    pub fn vrrp(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Ipv4Header {
        Ipv4Header {
            tos: VRRP_TOS,
            id,
            flags_frag: 0,
            ttl: VRRP_TTL,
            src,
            dst,
        }
    }
}

/// An IPv4 datagram carrying one advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    pub ip: Ipv4Header,
    pub advert: Advert,
}

/// Why bytes are not a valid advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    #[error("not IPv4 (version {0})")]
    IpVersion(u8),
    #[error("bad IPv4 header length {0}")]
    IpHeaderLength(usize),
    #[error("IPv4 total length {header} but {actual} bytes")]
    IpTotalLength { header: usize, actual: usize },
    #[error("bad IPv4 header checksum")]
    IpChecksum,
    #[error("fragmented datagram")]
    Fragmented,
    #[error("IP protocol {0}, not 112")]
    Protocol(u8),
    #[error("TTL {0}, not 255")]
    Ttl(u8),
    #[error("VRRP version {0}")]
    Version(u8),
    #[error("VRRP type {0}, not an advertisement")]
    Type(u8),
    #[error("VRRP length {actual} but {count} addresses need {expected}")]
    Length {
        count: u8,
        expected: usize,
        actual: usize,
    },
    #[error("unsupported authentication type {0}")]
    AuthType(u8),
    #[error("advertisement interval 0")]
    ZeroInterval,
    #[error("bad VRRP checksum")]
    Checksum,
}

impl DecodeError {
    /// The drop counter this error counts in ([`crate::ctl::VrrpStatus::drops`]).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::IpChecksum | DecodeError::Checksum => "checksum",
            DecodeError::Ttl(_) => "ttl",
            DecodeError::Version(_) => "version",
            DecodeError::AuthType(_) => "auth_type",
            _ => "malformed",
        }
    }
}

/// Why an advertisement cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} addresses (at most 255)")]
    TooManyAddresses(usize),
    #[error("interval {0} out of range for the version")]
    Interval(u16),
    #[error("VRRPv3 has no authentication")]
    V3Auth,
}

/// RFC 1071 ones' complement sum, folded (not inverted).
fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The Internet checksum of `bytes`, starting from a partial sum.
fn checksum(initial: u32, bytes: &[u8]) -> u16 {
    !(sum16(initial, bytes) as u16)
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_VRRP;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum16(0, &p)
}

impl Advert {
    /// The advertisement interval as a duration.
    pub fn interval(&self) -> Duration {
        match self.version {
            Version::V2 => Duration::from_secs(u64::from(self.adver_int)),
            Version::V3 => Duration::from_millis(u64::from(self.adver_int) * 10),
        }
    }

    /// Length of the VRRP message.
    pub fn len(&self) -> usize {
        VRRP_HEADER_LEN
            + 4 * self.addrs.len()
            + match self.version {
                Version::V2 => AUTH_DATA_LEN,
                Version::V3 => 0,
            }
    }

    /// Never empty: the header is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The VRRP message alone (what a raw socket without IP_HDRINCL sends).
    /// `src`/`dst` only matter for v3 with the pseudo-header.
    pub fn encode(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        v3: V3Checksum,
    ) -> Result<Vec<u8>, EncodeError> {
        if self.addrs.len() > 255 {
            return Err(EncodeError::TooManyAddresses(self.addrs.len()));
        }
        let mut out = Vec::with_capacity(self.len());
        out.push((self.version.number() << 4) | 1);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(self.addrs.len() as u8);
        match self.version {
            Version::V2 => {
                if self.adver_int == 0 || self.adver_int > 255 {
                    return Err(EncodeError::Interval(self.adver_int));
                }
                out.push(self.auth.type_number());
                out.push(self.adver_int as u8);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::V3Auth);
                }
                if self.adver_int == 0 || self.adver_int > V3_MAX_INTERVAL_CS {
                    return Err(EncodeError::Interval(self.adver_int));
                }
                out.extend_from_slice(&self.adver_int.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            out.extend_from_slice(&a.octets());
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => out.extend_from_slice(&[0; AUTH_DATA_LEN]),
                Auth::Pass(p) => out.extend_from_slice(&p),
            }
        }
        let initial = match (self.version, v3) {
            (Version::V3, V3Checksum::PseudoHeader) => pseudo_sum(src, dst, out.len()),
            _ => 0,
        };
        let c = checksum(initial, &out);
        out[6..8].copy_from_slice(&c.to_be_bytes());
        Ok(out)
    }

    /// Decode a VRRP message alone (no IP header); `src`/`dst` are the IP
    /// addresses it came with (for v3's pseudo-header).
    pub fn decode(
        bytes: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        v3: V3Checksum,
    ) -> Result<Advert, DecodeError> {
        if bytes.len() < VRRP_HEADER_LEN {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        let version = match bytes[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::Version(v)),
        };
        let kind = bytes[0] & 0x0f;
        if kind != 1 {
            return Err(DecodeError::Type(kind));
        }
        let count = bytes[3];
        let expected = VRRP_HEADER_LEN
            + 4 * usize::from(count)
            + if version == Version::V2 {
                AUTH_DATA_LEN
            } else {
                0
            };
        if bytes.len() != expected {
            return Err(DecodeError::Length {
                count,
                expected,
                actual: bytes.len(),
            });
        }
        let (auth_type, adver_int) = match version {
            Version::V2 => (bytes[4], u16::from(bytes[5])),
            // The 4 reserved bits are ignored on receive (RFC 5798 5.2.5).
            Version::V3 => (0, u16::from_be_bytes([bytes[4], bytes[5]]) & 0x0fff),
        };
        if adver_int == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        let initial = match (version, v3) {
            (Version::V3, V3Checksum::PseudoHeader) => pseudo_sum(src, dst, bytes.len()),
            _ => 0,
        };
        if sum16(initial, bytes) != 0xffff {
            return Err(DecodeError::Checksum);
        }
        let addrs_end = VRRP_HEADER_LEN + 4 * usize::from(count);
        let addrs = bytes[VRRP_HEADER_LEN..addrs_end]
            .chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect();
        let auth = match auth_type {
            0 => Auth::None,
            1 => {
                let mut p = [0u8; AUTH_DATA_LEN];
                p.copy_from_slice(&bytes[addrs_end..addrs_end + AUTH_DATA_LEN]);
                Auth::Pass(p)
            }
            t => return Err(DecodeError::AuthType(t)),
        };
        Ok(Advert {
            version,
            vrid: bytes[1],
            priority: bytes[2],
            adver_int,
            addrs,
            auth,
        })
    }
}

/// What a receiving instance expects of an advert: its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    pub version: Version,
    pub vrid: u8,
    pub auth: Auth,
    /// In the version's unit (see [`Advert::adver_int`]).
    pub adver_int: u16,
    pub addrs: &'a [Ipv4Addr],
    /// `vrrp_skip_check_adv_addr` is set and the advert comes from the
    /// master already known: the address list is not compared.
    pub skip_addr_check: bool,
}

/// Why a well-formed advert is not for this instance, or not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("version {got:?}, configured {want:?}")]
    Version { got: Version, want: Version },
    #[error("VRID {0}")]
    Vrid(u8),
    #[error("authentication type mismatch")]
    AuthType,
    #[error("bad password")]
    Password,
    #[error("advertisement interval {got}, configured {want}")]
    Interval { got: u16, want: u16 },
    #[error("{got} addresses, configured {want}")]
    AddressCount { got: usize, want: usize },
    #[error("address {0} not in the advert")]
    Address(Ipv4Addr),
}

impl Mismatch {
    /// The drop counter this mismatch counts in ([`crate::ctl::VrrpStatus::drops`]).
    pub fn reason(&self) -> &'static str {
        match self {
            Mismatch::Version { .. } => "version",
            Mismatch::Vrid(_) => "vrid",
            Mismatch::AuthType => "auth_type",
            Mismatch::Password => "auth_password",
            Mismatch::Interval { .. } => "interval",
            Mismatch::AddressCount { .. } | Mismatch::Address(_) => "addresses",
        }
    }
}

impl Advert {
    /// keepalived's checks of a decoded advert against the instance's
    /// configuration: version, VRID, auth type and PASS password, the
    /// interval for v2 (v3 learns the master's), and the virtual address set
    /// (count and members) unless skipped.
    pub fn check(&self, want: &Expected) -> Result<(), Mismatch> {
        if self.version != want.version {
            return Err(Mismatch::Version {
                got: self.version,
                want: want.version,
            });
        }
        if self.vrid != want.vrid {
            return Err(Mismatch::Vrid(self.vrid));
        }
        match (self.auth, want.auth) {
            (Auth::None, Auth::None) => {}
            (Auth::Pass(got), Auth::Pass(p)) if got != p => return Err(Mismatch::Password),
            (Auth::Pass(_), Auth::Pass(_)) => {}
            _ if self.version == Version::V2 => return Err(Mismatch::AuthType),
            _ => {}
        }
        if self.version == Version::V2 && self.adver_int != want.adver_int {
            return Err(Mismatch::Interval {
                got: self.adver_int,
                want: want.adver_int,
            });
        }
        if !want.skip_addr_check {
            if self.addrs.len() != want.addrs.len() {
                return Err(Mismatch::AddressCount {
                    got: self.addrs.len(),
                    want: want.addrs.len(),
                });
            }
            if let Some(a) = want.addrs.iter().find(|a| !self.addrs.contains(a)) {
                return Err(Mismatch::Address(*a));
            }
        }
        Ok(())
    }
}

impl Packet {
    /// The advertisement keepalived would send from `src` to `dst` with IP id `id`.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, id: u16, advert: Advert) -> Packet {
        Packet {
            ip: Ipv4Header::vrrp(src, dst, id),
            advert,
        }
    }

    /// IPv4 header (no options, checksum computed) + VRRP message: what a raw
    /// socket with IP_HDRINCL sends.
    pub fn encode(&self, v3: V3Checksum) -> Result<Vec<u8>, EncodeError> {
        let body = self.advert.encode(self.ip.src, self.ip.dst, v3)?;
        let total = IPV4_HEADER_LEN + body.len();
        let mut out = Vec::with_capacity(total);
        out.push(0x45);
        out.push(self.ip.tos);
        out.extend_from_slice(&(total as u16).to_be_bytes());
        out.extend_from_slice(&self.ip.id.to_be_bytes());
        out.extend_from_slice(&self.ip.flags_frag.to_be_bytes());
        out.push(self.ip.ttl);
        out.push(IPPROTO_VRRP);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.ip.src.octets());
        out.extend_from_slice(&self.ip.dst.octets());
        let c = checksum(0, &out[..IPV4_HEADER_LEN]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decode an IPv4 datagram as a raw socket receives it, TTL 255 checked
    /// (multicast). IP options are skipped (and not kept: [`Packet::encode`]
    /// writes none).
    pub fn decode(bytes: &[u8], v3: V3Checksum) -> Result<Packet, DecodeError> {
        Packet::decode_with(bytes, v3, true)
    }

    /// [`Packet::decode`], with the TTL check optional: keepalived checks
    /// TTL 255 only for instances without `unicast_peer`.
    pub fn decode_with(
        bytes: &[u8],
        v3: V3Checksum,
        check_ttl: bool,
    ) -> Result<Packet, DecodeError> {
        if bytes.len() < IPV4_HEADER_LEN {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        if bytes[0] >> 4 != 4 {
            return Err(DecodeError::IpVersion(bytes[0] >> 4));
        }
        let ihl = usize::from(bytes[0] & 0x0f) * 4;
        if ihl < IPV4_HEADER_LEN || ihl > bytes.len() {
            return Err(DecodeError::IpHeaderLength(ihl));
        }
        let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if total != bytes.len() {
            return Err(DecodeError::IpTotalLength {
                header: total,
                actual: bytes.len(),
            });
        }
        if sum16(0, &bytes[..ihl]) != 0xffff {
            return Err(DecodeError::IpChecksum);
        }
        let flags_frag = u16::from_be_bytes([bytes[6], bytes[7]]);
        // MF set or a non-zero offset; DF is fine.
        if flags_frag & 0x3fff != 0 {
            return Err(DecodeError::Fragmented);
        }
        if bytes[9] != IPPROTO_VRRP {
            return Err(DecodeError::Protocol(bytes[9]));
        }
        if check_ttl && bytes[8] != VRRP_TTL {
            return Err(DecodeError::Ttl(bytes[8]));
        }
        let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
        let dst = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
        let advert = Advert::decode(&bytes[ihl..], src, dst, v3)?;
        Ok(Packet {
            ip: Ipv4Header {
                tos: bytes[1],
                id: u16::from_be_bytes([bytes[4], bytes[5]]),
                flags_frag,
                ttl: bytes[8],
                src,
                dst,
            },
            advert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The packets of one fixture file: hex lines, `#` comments.
    fn fixture(name: &str) -> Vec<Vec<u8>> {
        let path = format!("{}/tests/data/vrrp/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                    .collect()
            })
            .collect()
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const VIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 101)];

    fn golden(file: &str, expected: [Packet; 2]) {
        let packets = fixture(file);
        assert_eq!(packets.len(), 2, "{file}");
        for (bytes, want) in packets.iter().zip(expected) {
            let got = Packet::decode(bytes, V3Checksum::PseudoHeader).unwrap();
            assert_eq!(got, want, "{file}");
            assert_eq!(
                &want.encode(V3Checksum::PseudoHeader).unwrap(),
                bytes,
                "{file}"
            );
        }
    }

    fn advert(version: Version, vrid: u8, priority: u8, adver_int: u16, auth: Auth) -> Advert {
        Advert {
            version,
            vrid,
            priority,
            adver_int,
            addrs: VIPS.to_vec(),
            auth,
        }
    }

    #[test]
    fn golden_keepalived_v2_no_auth() {
        golden(
            "keepalived-v2noauth.hex",
            [
                Packet::new(
                    SRC,
                    VRRP_MCAST_V4,
                    1,
                    advert(Version::V2, 51, 100, 1, Auth::None),
                ),
                Packet::new(
                    SRC,
                    VRRP_MCAST_V4,
                    3,
                    advert(Version::V2, 51, 0, 1, Auth::None),
                ),
            ],
        );
    }

    #[test]
    fn golden_keepalived_v2_pass() {
        let auth = Auth::pass("secret");
        golden(
            "keepalived-v2pass.hex",
            [
                Packet::new(SRC, VRRP_MCAST_V4, 1, advert(Version::V2, 52, 150, 1, auth)),
                Packet::new(SRC, VRRP_MCAST_V4, 3, advert(Version::V2, 52, 0, 1, auth)),
            ],
        );
    }

    #[test]
    fn golden_keepalived_v3() {
        let packets = [
            Packet::new(
                SRC,
                VRRP_MCAST_V4,
                1,
                advert(Version::V3, 53, 200, 10, Auth::None),
            ),
            Packet::new(
                SRC,
                VRRP_MCAST_V4,
                0x30,
                advert(Version::V3, 53, 0, 10, Auth::None),
            ),
        ];
        assert_eq!(packets[0].advert.interval(), Duration::from_millis(100));
        golden("keepalived-v3.hex", packets);
        // keepalived's default includes the pseudo-header: RFC 9568's form
        // does not verify its packets.
        let bytes = &fixture("keepalived-v3.hex")[0];
        assert_eq!(
            Packet::decode(bytes, V3Checksum::NoPseudoHeader),
            Err(DecodeError::Checksum)
        );
    }

    #[test]
    fn v3_without_pseudo_header_round_trips() {
        let p = Packet::new(
            SRC,
            VRRP_MCAST_V4,
            7,
            advert(Version::V3, 9, 90, 100, Auth::None),
        );
        let bytes = p.encode(V3Checksum::NoPseudoHeader).unwrap();
        assert_eq!(
            Packet::decode(&bytes, V3Checksum::NoPseudoHeader),
            Ok(p.clone())
        );
        assert_eq!(
            Packet::decode(&bytes, V3Checksum::PseudoHeader),
            Err(DecodeError::Checksum)
        );
        // v2 ignores the option.
        let p2 = Packet::new(
            SRC,
            VRRP_MCAST_V4,
            7,
            advert(Version::V2, 9, 90, 3, Auth::None),
        );
        assert_eq!(
            p2.encode(V3Checksum::NoPseudoHeader),
            p2.encode(V3Checksum::PseudoHeader)
        );
    }

    #[test]
    fn pass_is_truncated_and_padded() {
        assert_eq!(Auth::pass("ab"), Auth::Pass(*b"ab\0\0\0\0\0\0"));
        assert_eq!(Auth::pass("0123456789"), Auth::Pass(*b"01234567"));
    }

    /// A valid packet, its bytes changed at `at` by `f`, IP (and VRRP, for a
    /// change in the VRRP part) checksums fixed when `fix_ip` (to reach the
    /// checks after them).
    fn mutated(at: usize, fix_ip: bool, f: impl Fn(&mut u8)) -> Vec<u8> {
        let p = Packet::new(
            SRC,
            VRRP_MCAST_V4,
            1,
            advert(Version::V2, 51, 100, 1, Auth::None),
        );
        let mut b = p.encode(V3Checksum::PseudoHeader).unwrap();
        f(&mut b[at]);
        if fix_ip && at >= 20 && at != 26 && at != 27 {
            b[26] = 0;
            b[27] = 0;
            let c = checksum(0, &b[20..]);
            b[26..28].copy_from_slice(&c.to_be_bytes());
        }
        if fix_ip {
            b[10] = 0;
            b[11] = 0;
            let c = checksum(0, &b[..20]);
            b[10..12].copy_from_slice(&c.to_be_bytes());
        }
        b
    }

    #[test]
    fn header_checks() {
        let d = |b: &[u8]| Packet::decode(b, V3Checksum::PseudoHeader);
        assert_eq!(d(&[0x45; 10]), Err(DecodeError::Truncated(10)));
        assert_eq!(
            d(&mutated(0, true, |b| *b = 0x65)),
            Err(DecodeError::IpVersion(6))
        );
        assert_eq!(
            d(&mutated(0, false, |b| *b = 0x44)),
            Err(DecodeError::IpHeaderLength(16))
        );
        assert_eq!(
            d(&mutated(1, false, |b| *b ^= 1)),
            Err(DecodeError::IpChecksum)
        );
        assert_eq!(
            d(&mutated(8, true, |b| *b = 254)),
            Err(DecodeError::Ttl(254))
        );
        // Unicast peers may be routed: no TTL check then.
        let p = Packet::decode_with(
            &mutated(8, true, |b| *b = 254),
            V3Checksum::PseudoHeader,
            false,
        );
        assert_eq!(p.map(|p| p.ip.ttl), Ok(254));
        assert_eq!(
            d(&mutated(9, true, |b| *b = 17)),
            Err(DecodeError::Protocol(17))
        );
        assert_eq!(
            d(&mutated(6, true, |b| *b = 0x20)),
            Err(DecodeError::Fragmented)
        );
        // DF is accepted.
        assert!(d(&mutated(6, true, |b| *b = 0x40)).is_ok());
        assert_eq!(
            d(&mutated(20, true, |b| *b = 0x41)),
            Err(DecodeError::Version(4))
        );
        assert_eq!(
            d(&mutated(20, true, |b| *b = 0x22)),
            Err(DecodeError::Type(2))
        );
        assert_eq!(
            d(&mutated(23, true, |b| *b = 3)),
            Err(DecodeError::Length {
                count: 3,
                expected: 8 + 12 + 8,
                actual: 24
            })
        );
        assert_eq!(
            d(&mutated(24, true, |b| *b = 2)),
            Err(DecodeError::AuthType(2))
        );
        assert_eq!(
            d(&mutated(25, true, |b| *b = 0)),
            Err(DecodeError::ZeroInterval)
        );
        assert_eq!(
            d(&mutated(22, false, |b| *b = 99)),
            Err(DecodeError::Checksum)
        );
        // A trailing byte, with the total length saying so: the VRRP length is wrong.
        let mut b = mutated(3, true, |b| *b += 1);
        b.push(0);
        assert_eq!(
            d(&b),
            Err(DecodeError::Length {
                count: 2,
                expected: 24,
                actual: 25
            })
        );
        // A trailing byte the IP header does not count.
        let mut b = mutated(0, false, |_| {});
        b.push(0);
        assert_eq!(
            d(&b),
            Err(DecodeError::IpTotalLength {
                header: 44,
                actual: 45
            })
        );
    }

    #[test]
    fn encode_refuses_what_the_wire_cannot_say() {
        let mut a = advert(Version::V2, 1, 100, 256, Auth::None);
        assert_eq!(
            a.encode(SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader),
            Err(EncodeError::Interval(256))
        );
        a.version = Version::V3;
        assert!(a
            .encode(SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader)
            .is_ok());
        a.adver_int = 4096;
        assert_eq!(
            a.encode(SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader),
            Err(EncodeError::Interval(4096))
        );
        a.adver_int = 1;
        a.auth = Auth::pass("x");
        assert_eq!(
            a.encode(SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader),
            Err(EncodeError::V3Auth)
        );
        a.auth = Auth::None;
        a.addrs = vec![SRC; 256];
        assert_eq!(
            a.encode(SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader),
            Err(EncodeError::TooManyAddresses(256))
        );
    }

    #[test]
    fn checks_against_the_configuration() {
        let a = advert(Version::V2, 52, 150, 1, Auth::pass("secret"));
        let want = Expected {
            version: Version::V2,
            vrid: 52,
            auth: Auth::pass("secret"),
            adver_int: 1,
            addrs: &[VIPS[1], VIPS[0]],
            skip_addr_check: false,
        };
        assert_eq!(a.check(&want), Ok(()));
        let e = |f: fn(&mut Expected)| {
            let mut w = want;
            f(&mut w);
            a.check(&w)
        };
        assert_eq!(
            e(|w| w.version = Version::V3),
            Err(Mismatch::Version {
                got: Version::V2,
                want: Version::V3
            })
        );
        assert_eq!(e(|w| w.vrid = 51), Err(Mismatch::Vrid(52)));
        assert_eq!(
            e(|w| w.auth = Auth::pass("secreT")),
            Err(Mismatch::Password)
        );
        assert_eq!(e(|w| w.auth = Auth::None), Err(Mismatch::AuthType));
        assert_eq!(
            e(|w| w.adver_int = 2),
            Err(Mismatch::Interval { got: 1, want: 2 })
        );
        assert_eq!(
            e(|w| w.addrs = &VIPS[..1]),
            Err(Mismatch::AddressCount { got: 2, want: 1 })
        );
        assert_eq!(
            e(|w| w.addrs = &[VIPS[0], SRC]),
            Err(Mismatch::Address(SRC))
        );
        assert_eq!(
            e(|w| {
                w.addrs = &[VIPS[0], SRC];
                w.skip_addr_check = true
            }),
            Ok(())
        );
        // v3 learns the master's interval.
        let a3 = advert(Version::V3, 52, 150, 100, Auth::None);
        let mut w3 = want;
        w3.version = Version::V3;
        w3.auth = Auth::None;
        w3.adver_int = 10;
        assert_eq!(a3.check(&w3), Ok(()));
    }

    fn arb_advert() -> impl Strategy<Value = Advert> {
        (
            any::<bool>(),
            any::<u8>(),
            any::<u8>(),
            1u16..=255,
            1u16..=4095,
            proptest::collection::vec(any::<u32>(), 0..20),
            proptest::option::of(any::<[u8; 8]>()),
        )
            .prop_map(|(v3, vrid, priority, s, cs, addrs, pass)| Advert {
                version: if v3 { Version::V3 } else { Version::V2 },
                vrid,
                priority,
                adver_int: if v3 { cs } else { s },
                addrs: addrs.into_iter().map(Ipv4Addr::from).collect(),
                auth: match pass {
                    Some(p) if !v3 => Auth::Pass(p),
                    _ => Auth::None,
                },
            })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Packet::decode(&bytes, V3Checksum::PseudoHeader);
            let _ = Packet::decode(&bytes, V3Checksum::NoPseudoHeader);
            let _ = Advert::decode(&bytes, SRC, VRRP_MCAST_V4, V3Checksum::PseudoHeader);
        }

        #[test]
        fn decode_never_panics_near_valid(
            a in arb_advert(),
            at in any::<usize>(),
            byte in any::<u8>(),
            cut in any::<usize>(),
        ) {
            let mut b = Packet::new(SRC, VRRP_MCAST_V4, 5, a).encode(V3Checksum::PseudoHeader).unwrap();
            let i = at % b.len();
            b[i] = byte;
            let _ = Packet::decode(&b, V3Checksum::PseudoHeader);
            b.truncate(cut % (b.len() + 1));
            let _ = Packet::decode(&b, V3Checksum::PseudoHeader);
        }

        #[test]
        fn round_trip(a in arb_advert(), id in any::<u16>(), rfc9568 in any::<bool>()) {
            let mode = if rfc9568 { V3Checksum::NoPseudoHeader } else { V3Checksum::PseudoHeader };
            let p = Packet::new(SRC, VRRP_MCAST_V4, id, a);
            let bytes = p.encode(mode).unwrap();
            prop_assert_eq!(bytes.len(), IPV4_HEADER_LEN + p.advert.len());
            prop_assert_eq!(Packet::decode(&bytes, mode), Ok(p));
        }
    }
}
