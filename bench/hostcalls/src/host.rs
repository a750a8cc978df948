//! A fake proxy-wasm host (ABI 0.2.1, as Envoy serves it) that counts every import a module calls.
//! It answers what a filter asks on the request path the way Envoy would: header maps, the clock,
//! metrics, shared data, properties, the plugin configuration. Everything else answers `Ok`.

use std::collections::{BTreeMap, HashMap};
use wasmi::{Caller, Error, Extern, Linker, Module, Val};

/// Statuses of the ABI.
const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const CAS_MISMATCH: i32 = 8;
/// Map and buffer types of the ABI.
const REQUEST_HEADERS: i32 = 0;
const RESPONSE_HEADERS: i32 = 2;
const PLUGIN_CONFIGURATION: i32 = 7;

pub type Headers = Vec<(String, Vec<u8>)>;

#[derive(Default)]
pub struct Host {
    /// Host calls by import name, while `counting`.
    pub calls: BTreeMap<String, u64>,
    /// Host calls made on the root context's ticks, while `ticking`.
    pub tick_calls: u64,
    pub ticking: bool,
    /// Entries into the module the host made itself to hand it data (`proxy_on_memory_allocate`).
    pub allocations: u64,
    pub counting: bool,
    pub request_headers: Headers,
    pub response_headers: Headers,
    pub plugin_configuration: Vec<u8>,
    pub now_ns: u64,
    /// Log lines at warn or above, to show why a module refused its configuration.
    pub errors: Vec<String>,
    pub shared: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_metric: u32,
}

type Result<T> = std::result::Result<T, Error>;

fn error(message: impl Into<String>) -> Error {
    Error::new(message.into())
}

fn arg(params: &[Val], index: usize) -> Result<u32> {
    match params.get(index) {
        Some(Val::I32(value)) => Ok(*value as u32),
        Some(Val::I64(value)) => Ok(*value as u32),
        _ => Err(error(format!("missing argument {index}"))),
    }
}

fn memory(caller: &Caller<'_, Host>) -> Result<wasmi::Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| error("the module exports no memory"))
}

fn read(caller: &Caller<'_, Host>, ptr: u32, len: u32) -> Result<Vec<u8>> {
    let mut bytes = vec![0; len as usize];
    memory(caller)?
        .read(caller, ptr as usize, &mut bytes)
        .map_err(|e| error(e.to_string()))?;
    Ok(bytes)
}

fn write(caller: &mut Caller<'_, Host>, ptr: u32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory
        .write(caller, ptr as usize, bytes)
        .map_err(|e| error(e.to_string()))
}

/// Hands `bytes` to the module as Envoy does: memory from its allocator (a call into the module),
/// the address and size written where the module asked.
fn give(caller: &mut Caller<'_, Host>, bytes: &[u8], ptr_out: u32, size_out: u32) -> Result<i32> {
    let allocate = caller
        .get_export("proxy_on_memory_allocate")
        .and_then(Extern::into_func)
        .ok_or_else(|| error("no proxy_on_memory_allocate"))?;
    let mut address = [Val::I32(0)];
    allocate.call(&mut *caller, &[Val::I32(bytes.len() as i32)], &mut address)?;
    let Val::I32(address) = address[0] else {
        return Err(error("proxy_on_memory_allocate returned no address"));
    };
    caller.data_mut().allocations += u64::from(caller.data().counting);
    write(caller, address as u32, bytes)?;
    write(caller, ptr_out, &address.to_le_bytes())?;
    write(caller, size_out, &(bytes.len() as u32).to_le_bytes())?;
    Ok(OK)
}

/// The ABI's map serialization: count, (name length, value length) pairs, then each name and value
/// followed by a NUL.
fn serialize(map: &Headers) -> Vec<u8> {
    let mut bytes = (map.len() as u32).to_le_bytes().to_vec();
    for (name, value) in map {
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in map {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

impl Host {
    fn map(&mut self, map_type: u32) -> Option<&mut Headers> {
        match map_type as i32 {
            REQUEST_HEADERS => Some(&mut self.request_headers),
            RESPONSE_HEADERS => Some(&mut self.response_headers),
            _ => None,
        }
    }
}

/// Answers one import; `p` are its arguments. Returns the status (or the value) it returns.
fn answer(caller: &mut Caller<'_, Host>, name: &str, p: &[Val]) -> Result<i32> {
    match name {
        "proxy_log" => {
            let message = read(caller, arg(p, 1)?, arg(p, 2)?)?;
            if arg(p, 0)? >= 3 {
                let line = String::from_utf8_lossy(&message).into_owned();
                caller.data_mut().errors.push(line);
            }
            Ok(OK)
        }
        "proxy_get_buffer_bytes" if arg(p, 0)? as i32 == PLUGIN_CONFIGURATION => {
            let (start, max) = (arg(p, 1)? as usize, arg(p, 2)? as usize);
            let config = caller.data().plugin_configuration.clone();
            let end = config.len().min(start.saturating_add(max));
            give(
                caller,
                config.get(start..end).unwrap_or_default(),
                arg(p, 3)?,
                arg(p, 4)?,
            )
        }
        "proxy_get_header_map_pairs" => {
            let bytes = match caller.data_mut().map(arg(p, 0)?) {
                Some(map) => serialize(map),
                None => return Ok(NOT_FOUND),
            };
            give(caller, &bytes, arg(p, 1)?, arg(p, 2)?)
        }
        "proxy_get_header_map_value" => {
            let key = read(caller, arg(p, 1)?, arg(p, 2)?)?;
            let value = caller.data_mut().map(arg(p, 0)?).and_then(|map| {
                map.iter()
                    .find(|(name, _)| name.as_bytes() == key)
                    .map(|(_, value)| value.clone())
            });
            match value {
                Some(value) => give(caller, &value, arg(p, 3)?, arg(p, 4)?),
                None => Ok(NOT_FOUND),
            }
        }
        "proxy_replace_header_map_value" | "proxy_add_header_map_value" => {
            let key = String::from_utf8_lossy(&read(caller, arg(p, 1)?, arg(p, 2)?)?).into_owned();
            let value = read(caller, arg(p, 3)?, arg(p, 4)?)?;
            let replace = name == "proxy_replace_header_map_value";
            if let Some(map) = caller.data_mut().map(arg(p, 0)?) {
                if replace {
                    map.retain(|(name, _)| *name != key);
                }
                map.push((key, value));
            }
            Ok(OK)
        }
        "proxy_remove_header_map_value" => {
            let key = read(caller, arg(p, 1)?, arg(p, 2)?)?;
            if let Some(map) = caller.data_mut().map(arg(p, 0)?) {
                map.retain(|(name, _)| name.as_bytes() != key);
            }
            Ok(OK)
        }
        "proxy_get_current_time_nanoseconds" => {
            let now = caller.data().now_ns;
            write(caller, arg(p, 0)?, &now.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_get_property" => {
            let path = read(caller, arg(p, 0)?, arg(p, 1)?)?;
            if path.split(|b| *b == 0).next() == Some(b"plugin_name") {
                give(caller, b"sluice", arg(p, 2)?, arg(p, 3)?)
            } else {
                Ok(NOT_FOUND)
            }
        }
        "proxy_define_metric" => {
            let id = caller.data().next_metric + 1;
            caller.data_mut().next_metric = id;
            write(caller, arg(p, 3)?, &id.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_get_shared_data" => {
            let key = read(caller, arg(p, 0)?, arg(p, 1)?)?;
            let Some((value, cas)) = caller.data().shared.get(&key).cloned() else {
                return Ok(NOT_FOUND);
            };
            write(caller, arg(p, 4)?, &cas.to_le_bytes())?;
            give(caller, &value, arg(p, 2)?, arg(p, 3)?)
        }
        "proxy_set_shared_data" => {
            let key = read(caller, arg(p, 0)?, arg(p, 1)?)?;
            let value = read(caller, arg(p, 2)?, arg(p, 3)?)?;
            let cas = arg(p, 4)?;
            let shared = &mut caller.data_mut().shared;
            let current = shared.get(&key).map_or(0, |(_, cas)| *cas);
            if cas != 0 && cas != current {
                return Ok(CAS_MISMATCH);
            }
            shared.insert(key, (value, current + 1));
            Ok(OK)
        }
        "proxy_call_foreign_function" => {
            // Envoy's clear_route_cache answers Ok with no data.
            write(caller, arg(p, 4)?, &0u32.to_le_bytes())?;
            write(caller, arg(p, 5)?, &0u32.to_le_bytes())?;
            Ok(OK)
        }
        "random_get" => {
            let len = arg(p, 1)? as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
            write(caller, arg(p, 0)?, &bytes)?;
            Ok(OK)
        }
        "environ_sizes_get" => {
            write(caller, arg(p, 0)?, &0u32.to_le_bytes())?;
            write(caller, arg(p, 1)?, &0u32.to_le_bytes())?;
            Ok(OK)
        }
        "fd_write" => {
            let (iovs, count) = (arg(p, 1)?, arg(p, 2)?);
            let mut written = 0u32;
            for i in 0..count {
                let iov = read(caller, iovs + 8 * i, 8)?;
                written += u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            }
            write(caller, arg(p, 3)?, &written.to_le_bytes())?;
            Ok(OK)
        }
        "proc_exit" => Err(error("the module exited")),
        _ => Ok(OK),
    }
}

/// Defines every function `module` imports as a counting stub over `answer`.
pub fn link(linker: &mut Linker<Host>, module: &Module) -> Result<()> {
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let name = import.name().to_string();
        let returns = ty.results().len();
        linker
            .func_new(
                import.module(),
                import.name(),
                ty,
                move |mut caller, params, results| {
                    if caller.data().counting {
                        *caller.data_mut().calls.entry(name.clone()).or_default() += 1;
                    }
                    if caller.data().ticking {
                        caller.data_mut().tick_calls += 1;
                    }
                    let status = answer(&mut caller, &name, params)?;
                    if returns == 1 {
                        results[0] = Val::I32(status);
                    }
                    Ok(())
                },
            )
            .map_err(|e| error(e.to_string()))?;
    }
    Ok(())
}
