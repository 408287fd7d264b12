//! The activity log: the on-disk transaction block (`AlTransaction`, a
//! full snapshot of the hot extents in each 4 KiB slot of the ring) and the
//! log in memory ([`ActivityLog`]: marking writes, transactions, cooling,
//! recovery after a crash). The layout is described in the parent module.

use super::*;
use std::collections::HashMap;

/// One AL transaction block: magic, crc, seq, device size, extent list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AlTransaction {
    pub(super) seq: u64,
    pub(super) device_size: u64,
    pub(super) extents: Vec<u32>,
}

impl AlTransaction {
    // Header: 0 magic[8], 8 version u32, 12 count u32, 16 seq u64,
    // 24 device_size u64, 32..48 reserved; extents u32 from 48; crc at 4092.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK as usize];
        b[0..8].copy_from_slice(AL_MAGIC);
        put32(&mut b, 8, VERSION);
        put32(&mut b, 12, self.extents.len() as u32);
        put64(&mut b, 16, self.seq);
        put64(&mut b, 24, self.device_size);
        for (i, e) in self.extents.iter().enumerate() {
            put32(&mut b, AL_HDR + i * 4, *e);
        }
        let crc = crc32fast::hash(&b[..CRC_AT]);
        put32(&mut b, CRC_AT, crc);
        b
    }

    pub(super) fn decode(b: &[u8]) -> Option<AlTransaction> {
        if &b[0..8] != AL_MAGIC
            || crc32fast::hash(&b[..CRC_AT]) != get32(b, CRC_AT)
            || get32(b, 8) != VERSION
        {
            return None;
        }
        let n = get32(b, 12) as usize;
        if n > AL_MAX_EXTENTS {
            return None;
        }
        Some(AlTransaction {
            seq: get64(b, 16),
            device_size: get64(b, 24),
            extents: (0..n).map(|i| get32(b, AL_HDR + i * 4)).collect(),
        })
    }
}

/// Result of [`ActivityLog::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlRecovery {
    /// Sequence number of the newest valid transaction (0: none).
    pub seq: u64,
    /// The extents hot at the time of the crash, sorted: they may differ
    /// from the peer and must be resynced.
    pub extents: Vec<u64>,
}

/// Result of [`ActivityLog::mark`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlMark {
    /// An AL transaction must be durable ([`ActivityLog::write_transaction`])
    /// before the write may be submitted.
    pub transaction_needed: bool,
    /// Extents evicted to make room: their bitmap pages
    /// ([`Layout::bm_pages_for_extent`]) must be written before the
    /// transaction that drops them.
    pub evicted: Vec<u64>,
}

/// The activity log in memory: the set of hot 4 MiB extents (LRU) with the
/// number of writes in flight in each.
#[derive(Debug, Clone)]
pub struct ActivityLog {
    capacity: usize,
    next_seq: u64,
    /// extent -> (in-flight writes, last use tick)
    hot: HashMap<u64, (u32, u64)>,
    /// Extents named by the last durable transaction.
    committed: BTreeSet<u64>,
    tick: u64,
    /// Extents leave only through [`cool`](Self::cool), never by eviction
    /// in [`mark`](Self::mark) (see [`cool_only`](Self::cool_only)).
    cool_only: bool,
}

impl ActivityLog {
    /// An empty AL of at most `capacity` extents whose next transaction
    /// gets `next_seq` (use `recover(..).seq + 1`).
    pub fn new(capacity: usize, next_seq: u64) -> Result<ActivityLog, MetaError> {
        if capacity == 0 || capacity > AL_MAX_EXTENTS {
            return Err(MetaError::Invalid(format!(
                "al-extents must be 1..={AL_MAX_EXTENTS}, not {capacity}"
            )));
        }
        Ok(ActivityLog {
            capacity,
            next_seq: next_seq.max(1),
            hot: HashMap::new(),
            committed: BTreeSet::new(),
            tick: 0,
            cool_only: false,
        })
    }

    /// Never evict in [`mark`](Self::mark) (it then fails with `AlFull`):
    /// with a peer, an extent may leave only after both nodes flushed its
    /// writes, which the caller's aging rounds ([`cool`](Self::cool)) check
    /// (`datapath::Retirement`); an eviction would drop it unflushed.
    pub fn cool_only(&mut self) {
        self.cool_only = true;
    }

    /// Extents covering data bytes `[offset, offset+len)`.
    pub fn extents_of(offset: u64, len: u64) -> std::ops::Range<u64> {
        if len == 0 {
            return 0..0;
        }
        offset / AL_EXTENT..(offset.saturating_add(len)).div_ceil(AL_EXTENT)
    }

    /// Before a write to `[offset, offset+len)`: make its extents hot and
    /// count the write as in flight (pair with [`complete`](Self::complete)).
    /// If `transaction_needed`, the write must wait for
    /// [`write_transaction`](Self::write_transaction). Fails with
    /// [`MetaError::AlFull`] (nothing changed) when room cannot be made
    /// because every hot extent has writes in flight.
    pub fn mark(&mut self, offset: u64, len: u64) -> Result<AlMark, MetaError> {
        let exts = Self::extents_of(offset, len);
        if exts.end - exts.start > self.capacity as u64 {
            return Err(MetaError::AlFull(self.capacity));
        }
        let new: Vec<u64> = exts.clone().filter(|e| !self.hot.contains_key(e)).collect();
        let need_room = (self.hot.len() + new.len()).saturating_sub(self.capacity);
        let mut evictable: Vec<(u64, u64)> = self
            .hot
            .iter()
            .filter(|(e, (inflight, _))| !self.cool_only && *inflight == 0 && !exts.contains(e))
            .map(|(e, (_, t))| (*t, *e))
            .collect();
        if evictable.len() < need_room {
            return Err(MetaError::AlFull(self.capacity));
        }
        evictable.sort_unstable();
        let mut out = AlMark::default();
        for &(_, e) in evictable.iter().take(need_room) {
            self.hot.remove(&e);
            out.evicted.push(e);
        }
        self.tick += 1;
        for e in exts {
            let entry = self.hot.entry(e).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = self.tick;
            if !self.committed.contains(&e) {
                out.transaction_needed = true;
            }
        }
        Ok(out)
    }

    /// A write marked with [`mark`](Self::mark) has completed.
    pub fn complete(&mut self, offset: u64, len: u64) {
        for e in Self::extents_of(offset, len) {
            if let Some(entry) = self.hot.get_mut(&e) {
                entry.0 = entry.0.saturating_sub(1);
            }
        }
    }

    /// Whether the current hot set differs from the last durable one.
    pub fn needs_transaction(&self) -> bool {
        self.committed.len() != self.hot.len()
            || self.hot.keys().any(|e| !self.committed.contains(e))
    }

    /// Hot extents, sorted.
    pub fn hot_extents(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.hot.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Sequence number the next transaction will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Write the current hot set as one transaction (4 KiB pwrite into the
    /// next ring slot, then fdatasync). Returns its sequence number.
    pub fn write_transaction(&mut self, f: &File, l: &Layout) -> Result<u64, MetaError> {
        let mut extents = Vec::with_capacity(self.hot.len());
        for &e in self.hot.keys() {
            extents.push(
                u32::try_from(e)
                    .map_err(|_| MetaError::Invalid(format!("extent {e} out of range")))?,
            );
        }
        extents.sort_unstable();
        let seq = self.next_seq;
        let tr = AlTransaction {
            seq,
            device_size: l.device_size,
            extents,
        };
        write_sync(f, l.al_slot_offset(seq), &tr.encode())?;
        self.committed = self.hot.keys().copied().collect();
        self.next_seq += 1;
        Ok(seq)
    }

    /// Aging, step 1: the extents with no write in flight now, and the tick
    /// to pass to [`cool`](Self::cool) once the data is flushed.
    pub fn cool_candidates(&self) -> (u64, Vec<u64>) {
        let idle = self
            .hot
            .iter()
            .filter(|(_, (inflight, _))| *inflight == 0)
            .map(|(e, _)| *e)
            .collect();
        (self.tick, idle)
    }

    /// Aging, step 2 (after a flush of the data that started after step 1):
    /// drop the candidates not written since. Their writes are on stable
    /// storage on this node and acknowledged by the peer, so a crash cannot
    /// leave them different. Returns the dropped extents (their bitmap pages
    /// must be written before the next transaction, which drops them).
    pub fn cool(&mut self, tick: u64, candidates: &[u64]) -> Vec<u64> {
        let mut dropped = Vec::new();
        for e in candidates {
            if self
                .hot
                .get(e)
                .is_some_and(|(inflight, t)| *inflight == 0 && *t <= tick)
            {
                self.hot.remove(e);
                dropped.push(*e);
            }
        }
        dropped
    }

    /// Clean shutdown: drop every extent without writes in flight and
    /// write the (normally empty) hot set, so a later recover finds nothing
    /// to resync. Callers flush the bitmap first.
    pub fn close(&mut self, f: &File, l: &Layout) -> Result<u64, MetaError> {
        self.hot.retain(|_, (inflight, _)| *inflight > 0);
        self.write_transaction(f, l)
    }

    /// Read the AL ring after a crash: the extents named by the newest
    /// valid transaction. Torn/corrupt slots are skipped.
    pub fn recover(f: &File, l: &Layout) -> Result<AlRecovery, MetaError> {
        let mut buf = vec![0u8; AL_SIZE as usize];
        f.read_exact_at(&mut buf, l.al_offset)?;
        let best = buf
            .chunks(BLOCK as usize)
            .filter_map(AlTransaction::decode)
            .filter(|t| t.device_size == l.device_size)
            .max_by_key(|t| t.seq);
        Ok(match best {
            Some(t) => AlRecovery {
                seq: t.seq,
                extents: t.extents.into_iter().map(u64::from).collect(),
            },
            None => AlRecovery {
                seq: 0,
                extents: vec![],
            },
        })
    }
}
