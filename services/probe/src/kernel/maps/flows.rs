//! The per-job flow tables: one kernel LRU hash per `flows` job, held by
//! slot in the pinned ARRAY_OF_MAPS `job_flows`, so it outlives the probe.
//! When the job ends its table (up to 1M entries) is replaced by a small
//! "kept" one, only pinned: the top flows and a summary entry (family
//! KEPT_FAMILY) saying how big the table was and how many entries it held,
//! so results stay readable after a stop and across restarts without the
//! memory.
//!
//! Each table is also pinned (`<pin dir>/flows/slot_<n>`): reading a table
//! through the outer map goes by map id (BPF_MAP_GET_FD_BY_ID), which needs
//! CAP_SYS_ADMIN; the pin lets a probe holding only CAP_BPF and
//! CAP_NET_ADMIN read the tables it adopts after a restart.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use aya::maps::{ArrayOfMaps, HashMap, Map, MapData, MapError};
use aya_obj::generated::bpf_map_type;

use super::layout::{FlowKey, FlowVal};
use super::Maps;

/// The family of a kept table's summary entry (the classifier keys only
/// AF_INET and AF_INET6 flows, so it never writes one).
const KEPT_FAMILY: u8 = 0xff;

/// One job's flow table, open (its own fd: a slot recycled meanwhile does
/// not change what is read).
pub struct FlowTable {
    /// Entries it holds at most (for a kept table: the job's table's).
    pub size: u32,
    /// For a kept table: the entries the job's table held at its end.
    pub kept_of: Option<u64>,
    map: HashMap<MapData, FlowKey, FlowVal>,
}

impl FlowTable {
    /// Every flow entry (summary excluded). Entries can be evicted between
    /// the key walk and the read: those are skipped rather than failed.
    pub fn for_each(&self, mut f: impl FnMut(&FlowKey, &FlowVal)) {
        for (k, v) in self.map.iter().filter_map(Result::ok) {
            if k.family != KEPT_FAMILY {
                f(&k, &v);
            }
        }
    }

    /// The flow entries it holds now (a walk).
    pub fn count(&self) -> usize {
        let mut n = 0;
        self.for_each(|_, _| n += 1);
        n
    }
}

impl Maps {
    fn flow_tables(&mut self) -> Result<ArrayOfMaps<&mut MapData, MapData>, MapError> {
        ArrayOfMaps::try_from(&mut self.job_flows)
    }

    /// Give `slot` a new, empty flow table of `size` entries (replacing, and
    /// so freeing, any table of the job before).
    pub fn new_flow_table(&mut self, slot: u32, size: u32) -> Result<(), MapError> {
        let table = create_table(bpf_map_type::BPF_MAP_TYPE_LRU_HASH, size)?;
        self.install(slot, table)
    }

    /// Replace `slot`'s table by a kept one: `top` and a summary of the
    /// table it replaces (`size` entries at most, `held` at the end). The
    /// kept table is a plain hash (an LRU one evicts before it is full)
    /// and only pinned: nothing writes to it.
    pub fn keep_flow_table(
        &mut self,
        slot: u32,
        top: &[(FlowKey, FlowVal)],
        size: u32,
        held: u64,
    ) -> Result<(), MapError> {
        let kind = bpf_map_type::BPF_MAP_TYPE_HASH;
        let mut map = Map::from_map_data(create_table(kind, top.len() as u32 + 1)?)?;
        {
            let mut kept = HashMap::<&mut MapData, FlowKey, FlowVal>::try_from(&mut map)?;
            for (k, v) in top {
                kept.insert(k, v, 0)?;
            }
            let summary = FlowKey {
                family: KEPT_FAMILY,
                ..Default::default()
            };
            let held = FlowVal {
                packets: held,
                bytes: size.into(),
            };
            kept.insert(summary, held, 0)?;
        }
        let Map::HashMap(table) = map else {
            unreachable!("create_table made a hash")
        };
        self.pin_table(slot, &table)?;
        self.delete_outer(slot)
    }

    /// Pin `table` as `slot`'s and put it in the outer map (the one it
    /// replaces is freed with its last reference).
    fn install(&mut self, slot: u32, table: MapData) -> Result<(), MapError> {
        self.pin_table(slot, &table)?;
        self.flow_tables()?.set(slot, &table, 0)
    }

    /// Pin `table` as `slot`'s: aside, then renamed over the old pin
    /// (bpffs renames atomically), so a crash leaves the pin naming either
    /// table whole, and the newer one once the outer map has changed.
    fn pin_table(&self, slot: u32, table: &MapData) -> Result<(), MapError> {
        let Some(pin) = self.flow_pin(slot) else {
            return Ok(());
        };
        // bpffs refuses names with a dot.
        let aside = pin.with_file_name(format!("new_slot_{slot}"));
        let _ = std::fs::remove_file(&aside);
        let pin_err = |e: String| {
            MapError::SyscallError(aya::sys::SyscallError {
                call: "pinning a flow table",
                io_error: std::io::Error::other(format!("{}: {e}", pin.display())),
            })
        };
        table.pin(&aside).map_err(|e| pin_err(e.to_string()))?;
        std::fs::rename(&aside, &pin).map_err(|e| pin_err(e.to_string()))
    }

    /// Where `slot`'s table is pinned (None: maps opened without a pin dir).
    fn flow_pin(&self, slot: u32) -> Option<PathBuf> {
        self.flow_pin_dir
            .as_ref()
            .map(|d| d.join(format!("slot_{slot}")))
    }

    fn unpin_flow_table(&self, slot: u32) {
        if let Some(pin) = self.flow_pin(slot) {
            let _ = std::fs::remove_file(pin);
        }
    }

    /// Drop `slot`'s flow table, if any (the kernel frees it with the last
    /// reference). aya has no delete for map-of-maps: bpf(2) directly.
    pub fn drop_flow_table(&mut self, slot: u32) -> Result<(), MapError> {
        self.unpin_flow_table(slot);
        self.delete_outer(slot)
    }

    /// Take `slot`'s table out of the outer map (freed with its last
    /// reference, the pin included).
    fn delete_outer(&mut self, slot: u32) -> Result<(), MapError> {
        let Map::ArrayOfMaps(md) = &self.job_flows else {
            return Err(MapError::InvalidName {
                name: "job_flows".into(),
            });
        };
        #[repr(C)]
        struct Attr {
            map_fd: u32,
            pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let attr = Attr {
            map_fd: md.fd().as_fd().as_raw_fd() as u32,
            pad: 0,
            key: &slot as *const u32 as u64,
            value: 0,
            flags: 0,
        };
        const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
        // SAFETY: attr is a valid bpf_attr prefix for BPF_MAP_DELETE_ELEM and
        // `slot` outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_DELETE_ELEM,
                &attr as *const Attr,
                std::mem::size_of::<Attr>() as u32,
            )
        };
        let err = std::io::Error::last_os_error();
        if rc == 0 || err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        Err(MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_delete_elem",
            io_error: err,
        }))
    }

    /// `slot`'s flow table, open; None when the job has none.
    pub fn flow_table(&self, slot: u32) -> Result<Option<FlowTable>, MapError> {
        let pinned = self.flow_pin(slot).filter(|p| p.exists());
        let inner = match pinned {
            Some(pin) => MapData::from_pin(pin)?,
            // A table made by a probe that did not pin them: by map id.
            None => {
                let tables: ArrayOfMaps<&MapData, MapData> =
                    ArrayOfMaps::try_from(&self.job_flows)?;
                match tables.get(&slot, 0) {
                    Ok(md) => md,
                    Err(MapError::KeyNotFound) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        let size = inner.info()?.max_entries();
        let map = HashMap::<MapData, FlowKey, FlowVal>::try_from(Map::from_map_data(inner)?)?;
        let summary = FlowKey {
            family: KEPT_FAMILY,
            ..Default::default()
        };
        let (size, kept_of) = match map.get(&summary, 0) {
            Ok(v) => (v.bytes as u32, Some(v.packets)),
            Err(_) => (size, None),
        };
        Ok(Some(FlowTable { size, kept_of, map }))
    }
}

fn create_table(kind: bpf_map_type, size: u32) -> Result<MapData, MapError> {
    let def = aya_obj::Map::new_from_params(
        kind as u32,
        std::mem::size_of::<FlowKey>() as u32,
        std::mem::size_of::<FlowVal>() as u32,
        size,
        0,
    );
    MapData::create(def, "telegen_flows", None)
}
