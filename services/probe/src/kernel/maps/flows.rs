//! The per-job flow tables: one kernel LRU hash per `flows` job, held by
//! slot in the pinned ARRAY_OF_MAPS `job_flows`, so it outlives the probe
//! and the job (results stay readable after a stop) until the slot is
//! recycled.
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

/// One job's flow table as read from the kernel.
pub struct FlowTable {
    pub size: u32,
    pub flows: Vec<(FlowKey, FlowVal)>,
}

impl Maps {
    fn flow_tables(&mut self) -> Result<ArrayOfMaps<&mut MapData, MapData>, MapError> {
        ArrayOfMaps::try_from(&mut self.job_flows)
    }

    /// Give `slot` a new, empty flow table of `size` entries (replacing, and
    /// so freeing, any table of the job before).
    pub fn new_flow_table(&mut self, slot: u32, size: u32) -> Result<(), MapError> {
        let def = aya_obj::Map::new_from_params(
            bpf_map_type::BPF_MAP_TYPE_LRU_HASH as u32,
            std::mem::size_of::<FlowKey>() as u32,
            std::mem::size_of::<FlowVal>() as u32,
            size,
            0,
        );
        let table = MapData::create(def, "telegen_flows", None)?;
        self.unpin_flow_table(slot);
        if let Some(pin) = self.flow_pin(slot) {
            table.pin(&pin).map_err(|e| {
                MapError::SyscallError(aya::sys::SyscallError {
                    call: "pinning a flow table",
                    io_error: std::io::Error::other(format!("{}: {e}", pin.display())),
                })
            })?;
        }
        self.flow_tables()?.set(slot, &table, 0)
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

    /// `slot`'s flow table, None when the job has none.
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
        // Entries can be evicted between the key walk and the read: skip
        // those rather than fail.
        let flows = map.iter().filter_map(Result::ok).collect();
        Ok(Some(FlowTable { size, flows }))
    }
}
