//! The attached backing disk: opening it (metadata, bitmap, activity-log
//! recovery) and the metadata I/O (dirty bitmap pages, activity-log
//! transactions, clean close).

use super::*;

/// Why the backing disk cannot be attached ([`Device::open`], `attach`).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The metadata is missing or corrupt, or reading, recovering or
    /// writing it failed.
    #[error("{}: {source}", disk.display())]
    Meta { disk: PathBuf, source: MetaError },
    /// The data area cannot be opened for serving.
    #[error("{}: {source}", disk.display())]
    Store { disk: PathBuf, source: io::Error },
}

/// The attached backing disk.
pub(super) struct Local {
    pub(super) meta: Meta,
    pub(super) file: File,
    pub(super) store: Arc<FileStore>,
    pub(super) bitmap: Bitmap,
    pub(super) al: ActivityLog,
    /// DRBD's USE_DEGR_WFC_T, decided at attach before the flags change.
    pub(super) degr_wfc: bool,
}

impl Local {
    /// Open the backing disk: metadata (refused if absent or corrupt),
    /// bitmap, activity-log recovery (hot extents of a crashed Primary
    /// become out of sync).
    pub(super) fn open(cfg: &DeviceConfig) -> Result<(Local, Attached), OpenError> {
        let disk = &cfg.host.disk;
        let err = |source| OpenError::Meta {
            disk: disk.clone(),
            source,
        };
        let (meta, file) = meta::open(disk).map_err(err)?;
        let l = meta.layout;
        let mut bitmap = meta::read_bitmap(&file, &l).map_err(err)?;
        let rec = ActivityLog::recover(&file, &l).map_err(err)?;
        for &ext in &rec.extents {
            let off = ext * AL_EXTENT;
            if off < l.data_size {
                bitmap.set_range(off, AL_EXTENT.min(l.data_size - off));
            }
        }
        if !rec.extents.is_empty() {
            tracing::info!(
                extents = rec.extents.len(),
                "activity log: hot extents of the last Primary marked out of sync"
            );
            meta::write_bitmap(&file, &l, &bitmap).map_err(err)?;
            bitmap.take_dirty_pages();
        }
        let mut al = ActivityLog::new(AL_MAX_EXTENTS, rec.seq + 1).map_err(err)?;
        // Extents leave only after both nodes flushed them (`writeback`).
        al.cool_only();
        // An empty transaction: the recovered extents are in the bitmap now.
        al.write_transaction(&file, &l).map_err(err)?;
        let store =
            Arc::new(
                FileStore::open(disk, l.data_size).map_err(|source| OpenError::Store {
                    disk: disk.clone(),
                    source,
                })?,
            );
        // drbd_adm_attach: Consistent if MDF_CONSISTENT (Outdated unless it
        // was UpToDate), else Inconsistent; Consistent becomes UpToDate when
        // the peer is known outdated or fencing is off.
        let f = meta.flags;
        let mut state = if !f.consistent {
            DiskState::Inconsistent
        } else if f.was_up_to_date {
            DiskState::Consistent
        } else {
            DiskState::Outdated
        };
        if state == DiskState::Consistent
            && (f.peer_outdated || cfg.res.fencing == super::super::conf::Fencing::DontCare)
        {
            state = DiskState::UpToDate;
        }
        // drbd_adm_attach: the Primary of a degraded cluster (primary
        // indicator set, connected indicator clear) waits degr-wfc-timeout.
        let degr_wfc = f.primary_ind && !f.connected_ind;
        let attached = Attached {
            uuids: from_meta_uuids(meta.uuids),
            disk: state,
            bits_set: bitmap.count(),
            crashed_primary: f.crashed_primary,
            peer_outdated: f.peer_outdated,
        };
        Ok((
            Local {
                meta,
                file,
                store,
                bitmap,
                al,
                degr_wfc,
            },
            attached,
        ))
    }

    pub(super) fn write_dirty_bitmap(&mut self, counters: &mut Counters) -> Result<(), MetaError> {
        let pages = self.bitmap.take_dirty_pages();
        if pages.is_empty() {
            return Ok(());
        }
        counters.bm += pages.len() as u64;
        let r = meta::write_bitmap_pages(&self.file, &self.meta.layout, &self.bitmap, &pages);
        if r.is_err() {
            // Kept for the next writeback: a failed write must not lose bits.
            self.bitmap.redirty_pages(&pages);
        }
        r
    }

    /// The activity-log transaction a write's `mark` asked for: the bitmap
    /// pages of evicted extents first (all dirty pages after an earlier
    /// failure, which may have left an evicted extent's page unwritten).
    pub(super) fn al_transaction(
        &mut self,
        m: &meta::AlMark,
        counters: &mut Counters,
        after_failure: bool,
    ) -> Result<(), MetaError> {
        if after_failure {
            self.write_dirty_bitmap(counters)?;
        }
        let mut pages = Vec::new();
        for e in &m.evicted {
            pages.extend(self.meta.layout.bm_pages_for_extent(*e));
        }
        if !pages.is_empty() {
            pages.sort_unstable();
            pages.dedup();
            meta::write_bitmap_pages(&self.file, &self.meta.layout, &self.bitmap, &pages)?;
            counters.bm += pages.len() as u64;
        }
        self.al.write_transaction(&self.file, &self.meta.layout)?;
        counters.al += 1;
        Ok(())
    }

    /// Every extent of the activity log, as data ranges: after a failed
    /// flush, the writes that may be lost lie in them.
    pub(super) fn hot_ranges(&self) -> Vec<(u64, u64)> {
        let size = self.meta.layout.data_size;
        self.al
            .hot_extents()
            .into_iter()
            .map(|e| e * AL_EXTENT)
            .filter(|&off| off < size)
            .map(|off| (off, AL_EXTENT.min(size - off)))
            .collect()
    }

    /// Clean close: bitmap, empty activity log, superblock.
    pub(super) fn close(
        &mut self,
        counters: &mut Counters,
        last_write_ms: Option<u64>,
    ) -> Result<(), MetaError> {
        self.meta.last_write_ms = last_write_ms.unwrap_or(self.meta.last_write_ms);
        self.store.flush()?;
        self.write_dirty_bitmap(counters)?;
        self.al.close(&self.file, &self.meta.layout)?;
        meta::write_superblock(&self.file, &self.meta)
    }
}
