//! `wasi:http` resources counted against the call's host memory budget
//! ([`crate::sandbox::limits::CallBudget`]).
//!
//! wasmtime-wasi-http bounds the size of *one* `fields` resource, but not how many a guest keeps: a
//! connector creating `fields` with 60 KiB values in a loop drove the host past 1 GB. So the
//! functions through which a guest makes the host allocate — `fields` (constructor, `from-list`,
//! `append`, `set`, `delete`, `clone`), outgoing requests and responses and their setters, bodies,
//! `outgoing-handler.handle` — are shadowed in the linker by wrappers that charge the budget *before*
//! delegating to wasmtime-wasi-http's own implementation, and a ledger keyed by resource-table slot
//! gives the charge back when the resource is dropped (and moves it when ownership passes, headers into
//! a request, a request into `handle`). A connector that keeps what it creates is stopped at the
//! budget; one that creates and drops in a loop is not. Every other resource is bounded by the
//! table's entry cap, derived from the same budget.

use crate::sandbox::limits::CallBudget;
use crate::sandbox::runtime::CallState;
use std::collections::HashMap;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime::StoreContextMut;
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types as t};
use wasmtime_wasi_http::FieldMap;

/// Host bytes charged for one resource-table entry created through a wrapped function.
pub const ENTRY: usize = 256;
/// Host bytes charged per header on top of its name and value.
pub const PER_FIELD: usize = 128;
/// Host bytes charged per request handed to `outgoing-handler.handle` (the request, its task, the
/// connection it may open).
pub const PER_REQUEST: usize = 64 * 1024;
/// Bytes of budget per resource-table slot when deriving the table's entry cap.
pub const TABLE_SLOT_COST: u64 = 4 * 1024;

/// The resource-table entry cap of a call with this budget.
pub fn table_capacity(budget_bytes: u64) -> usize {
    (budget_bytes / TABLE_SLOT_COST).clamp(64, 16_384) as usize
}

fn field_cost(name: usize, value: usize) -> usize {
    name.saturating_add(value).saturating_add(PER_FIELD)
}

fn map_cost(m: &FieldMap) -> usize {
    m.iter().map(|(k, v)| field_cost(k.as_str().len(), v.len())).fold(ENTRY, usize::saturating_add)
}

/// What the generated binding does with a `HeaderResult`: a `header-error` goes to the guest,
/// anything else traps.
fn header_result<T>(r: Result<T, wasmtime_wasi_http::p2::HeaderError>) -> wasmtime::Result<(Result<T, t::HeaderError>,)> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

/// Bytes charged per live resource (by table rep), plus bytes pinned until the call ends.
#[derive(Default)]
pub struct Ledger {
    by_rep: HashMap<u32, usize>,
}

impl Ledger {
    /// Record `bytes` (already charged) against `rep`. A stale entry left at a reused rep belonged
    /// to a resource freed through a path we do not wrap: its bytes are gone, give them back.
    fn attach(&mut self, b: &CallBudget, rep: u32, bytes: usize) {
        if let Some(stale) = self.by_rep.insert(rep, bytes) {
            b.release(stale);
        }
    }
    fn add(&mut self, rep: u32, bytes: usize) {
        *self.by_rep.entry(rep).or_default() += bytes;
    }
    /// Set `rep`'s charge to `exact` (after a mutation), giving back or taking the difference.
    fn settle(&mut self, b: &CallBudget, rep: u32, exact: usize) {
        let cur = self.by_rep.entry(rep).or_default();
        if exact < *cur {
            b.release(*cur - exact);
        } else {
            // Never more than what was pre-charged in practice; if it is, take it (may overshoot).
            let _ = b.charge("wasi:http fields", exact - *cur);
        }
        *cur = exact;
    }
    fn take(&mut self, rep: u32) -> usize {
        self.by_rep.remove(&rep).unwrap_or(0)
    }
    fn release(&mut self, b: &CallBudget, rep: u32) {
        b.release(self.take(rep));
    }
}

type S<'a> = StoreContextMut<'a, CallState>;

/// Charge, run `op`, and give the charge back if `op` failed.
fn charged<R>(b: &CallBudget, what: &'static str, bytes: usize, op: impl FnOnce() -> wasmtime::Result<R>) -> wasmtime::Result<R> {
    b.charge(what, bytes).map_err(wasmtime::Error::msg)?;
    op().inspect_err(|_| b.release(bytes))
}

/// Shadow the functions of `wasi:http/types` and `wasi:http/outgoing-handler` through which a guest
/// makes the host allocate, with wrappers that charge the call's budget (and give the charge back
/// when the resource is dropped), then delegate to wasmtime-wasi-http's own implementation. Call
/// after `add_only_http_to_linker_async`.
pub fn add_to_linker(l: &mut Linker<CallState>) -> wasmtime::Result<()> {
    l.allow_shadowing(true);
    {
        let mut i = l.instance("wasi:http/types@0.2.12")?;

        // ---- fields ------------------------------------------------------------------------
        i.resource("fields", ResourceType::host::<t::Fields>(), |mut s: S<'_>, rep: u32| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            ledger.release(b, rep);
            t::HostFields::drop(&mut h, Resource::new_own(rep))
        })?;
        i.func_wrap("[constructor]fields", |mut s: S<'_>, (): ()| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let f = charged(b, "wasi:http fields", ENTRY, || t::HostFields::new(&mut h))?;
            ledger.attach(b, f.rep(), ENTRY);
            Ok((f,))
        })?;
        i.func_wrap("[static]fields.from-list", |mut s: S<'_>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let est = entries.iter().map(|(n, v)| field_cost(n.len(), v.len())).fold(ENTRY, usize::saturating_add);
            b.charge("wasi:http fields", est).map_err(wasmtime::Error::msg)?;
            match t::HostFields::from_list(&mut h, entries) {
                Ok(f) => {
                    let exact = map_cost(h.table.get(&f)?);
                    ledger.attach(b, f.rep(), est);
                    ledger.settle(b, f.rep(), exact);
                    Ok((Ok(f),))
                }
                Err(e) => {
                    b.release(est);
                    header_result::<Resource<t::Fields>>(Err(e))
                }
            }
        })?;
        i.func_wrap("[method]fields.append", |mut s: S<'_>, (f, name, value): (Resource<t::Fields>, String, Vec<u8>)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let rep = f.rep();
            let est = field_cost(name.len(), value.len());
            b.charge("wasi:http fields", est).map_err(wasmtime::Error::msg)?;
            ledger.add(rep, est);
            let r = t::HostFields::append(&mut h, Resource::new_borrow(rep), name, value);
            let exact = map_cost(h.table.get(&f)?);
            ledger.settle(b, rep, exact);
            header_result(r)
        })?;
        i.func_wrap("[method]fields.set", |mut s: S<'_>, (f, name, values): (Resource<t::Fields>, String, Vec<Vec<u8>>)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let rep = f.rep();
            let est = values.iter().map(|v| field_cost(name.len(), v.len())).fold(0, usize::saturating_add);
            b.charge("wasi:http fields", est).map_err(wasmtime::Error::msg)?;
            ledger.add(rep, est);
            let r = t::HostFields::set(&mut h, Resource::new_borrow(rep), name, values);
            let exact = map_cost(h.table.get(&f)?);
            ledger.settle(b, rep, exact);
            header_result(r)
        })?;
        i.func_wrap("[method]fields.delete", |mut s: S<'_>, (f, name): (Resource<t::Fields>, String)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let rep = f.rep();
            let r = t::HostFields::delete(&mut h, Resource::new_borrow(rep), name);
            // A delete on a map shared with a clone copies it first (Arc::make_mut); the clone was
            // charged in full, so the exact cost after the delete is all that is held here.
            if ledger.by_rep.contains_key(&rep) {
                let exact = map_cost(h.table.get(&f)?);
                ledger.settle(b, rep, exact);
            }
            header_result(r)
        })?;
        i.func_wrap("[method]fields.clone", |mut s: S<'_>, (f,): (Resource<t::Fields>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let cost = map_cost(h.table.get(&f)?);
            let c = charged(b, "wasi:http fields", cost, || t::HostFields::clone(&mut h, f))?;
            ledger.attach(b, c.rep(), cost);
            Ok((c,))
        })?;

        // ---- outgoing-request: takes over its headers' charge ------------------------------
        i.resource("outgoing-request", ResourceType::host::<t::OutgoingRequest>(), |mut s: S<'_>, rep: u32| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            ledger.release(b, rep);
            t::HostOutgoingRequest::drop(&mut h, Resource::new_own(rep))
        })?;
        i.func_wrap("[constructor]outgoing-request", |mut s: S<'_>, (headers,): (Resource<t::Fields>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let moved = ledger.take(headers.rep());
            let r = match charged(b, "wasi:http outgoing-request", ENTRY, || t::HostOutgoingRequest::new(&mut h, headers)) {
                Ok(r) => r,
                Err(e) => {
                    b.release(moved);
                    return Err(e);
                }
            };
            ledger.attach(b, r.rep(), ENTRY + moved);
            Ok((r,))
        })?;
        i.func_wrap(
            "[method]outgoing-request.set-path-with-query",
            |mut s: S<'_>, (r, v): (Resource<t::OutgoingRequest>, Option<String>)| {
                let (b, mut h, ledger) = s.data_mut().split_live();
                let n = v.as_ref().map_or(0, String::len);
                b.charge("wasi:http request path", n).map_err(wasmtime::Error::msg)?;
                ledger.add(r.rep(), n);
                Ok((t::HostOutgoingRequest::set_path_with_query(&mut h, r, v)?,))
            },
        )?;
        i.func_wrap(
            "[method]outgoing-request.set-authority",
            |mut s: S<'_>, (r, v): (Resource<t::OutgoingRequest>, Option<String>)| {
                let (b, mut h, ledger) = s.data_mut().split_live();
                let n = v.as_ref().map_or(0, String::len);
                b.charge("wasi:http request authority", n).map_err(wasmtime::Error::msg)?;
                ledger.add(r.rep(), n);
                Ok((t::HostOutgoingRequest::set_authority(&mut h, r, v)?,))
            },
        )?;
        i.func_wrap("[method]outgoing-request.set-method", |mut s: S<'_>, (r, m): (Resource<t::OutgoingRequest>, t::Method)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let n = if let t::Method::Other(x) = &m { x.len() } else { 0 };
            b.charge("wasi:http request method", n).map_err(wasmtime::Error::msg)?;
            ledger.add(r.rep(), n);
            Ok((t::HostOutgoingRequest::set_method(&mut h, r, m)?,))
        })?;
        i.func_wrap(
            "[method]outgoing-request.set-scheme",
            |mut s: S<'_>, (r, sc): (Resource<t::OutgoingRequest>, Option<t::Scheme>)| {
                let (b, mut h, ledger) = s.data_mut().split_live();
                let n = if let Some(t::Scheme::Other(x)) = &sc { x.len() } else { 0 };
                b.charge("wasi:http request scheme", n).map_err(wasmtime::Error::msg)?;
                ledger.add(r.rep(), n);
                Ok((t::HostOutgoingRequest::set_scheme(&mut h, r, sc)?,))
            },
        )?;
        // The body's channel (its receiving end) lives in the request: charge it there.
        i.func_wrap("[method]outgoing-request.body", |mut s: S<'_>, (r,): (Resource<t::OutgoingRequest>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let reserve = (h.hooks.p2_outgoing_body_buffer_chunks() + 1).saturating_mul(h.hooks.p2_outgoing_body_chunk_size());
            let rep = r.rep();
            let body = charged(b, "wasi:http outgoing-body buffer", reserve, || t::HostOutgoingRequest::body(&mut h, r))?;
            ledger.add(rep, reserve);
            Ok((body,))
        })?;
        // Trailers move into the body's channel: pinned (not released) until the call ends.
        i.func_wrap(
            "[static]outgoing-body.finish",
            |mut s: S<'_>, (body, trailers): (Resource<t::OutgoingBody>, Option<Resource<t::Trailers>>)| {
                let (_b, mut h, ledger) = s.data_mut().split_live();
                if let Some(tr) = &trailers {
                    let _pinned = ledger.take(tr.rep());
                }
                match t::HostOutgoingBody::finish(&mut h, body, trailers) {
                    Ok(()) => Ok((Ok(()),)),
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            },
        )?;

        // ---- outgoing-response (buildable, never sendable here) ------------------------------
        i.resource("outgoing-response", ResourceType::host::<t::OutgoingResponse>(), |mut s: S<'_>, rep: u32| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            ledger.release(b, rep);
            t::HostOutgoingResponse::drop(&mut h, Resource::new_own(rep))
        })?;
        i.func_wrap("[constructor]outgoing-response", |mut s: S<'_>, (headers,): (Resource<t::Fields>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let moved = ledger.take(headers.rep());
            let r = match charged(b, "wasi:http outgoing-response", ENTRY, || t::HostOutgoingResponse::new(&mut h, headers)) {
                Ok(r) => r,
                Err(e) => {
                    b.release(moved);
                    return Err(e);
                }
            };
            ledger.attach(b, r.rep(), ENTRY + moved);
            Ok((r,))
        })?;
        i.func_wrap("[method]outgoing-response.body", |mut s: S<'_>, (r,): (Resource<t::OutgoingResponse>,)| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            let reserve = (h.hooks.p2_outgoing_body_buffer_chunks() + 1).saturating_mul(h.hooks.p2_outgoing_body_chunk_size());
            let rep = r.rep();
            let body = charged(b, "wasi:http outgoing-body buffer", reserve, || t::HostOutgoingResponse::body(&mut h, r))?;
            ledger.add(rep, reserve);
            Ok((body,))
        })?;

        // ---- future-incoming-response: holds the sent request until dropped -------------------
        i.resource("future-incoming-response", ResourceType::host::<t::FutureIncomingResponse>(), |mut s: S<'_>, rep: u32| {
            let (b, mut h, ledger) = s.data_mut().split_live();
            ledger.release(b, rep);
            t::HostFutureIncomingResponse::drop(&mut h, Resource::new_own(rep))
        })?;
    }
    {
        let mut i = l.instance("wasi:http/outgoing-handler@0.2.12")?;
        i.func_wrap(
            "handle",
            |mut s: S<'_>, (r, o): (Resource<t::OutgoingRequest>, Option<Resource<t::RequestOptions>>)| {
                let (b, mut h, ledger) = s.data_mut().split_live();
                let moved = ledger.take(r.rep());
                if let Err(e) = b.charge("wasi:http outgoing requests", PER_REQUEST) {
                    b.release(moved);
                    return Err(wasmtime::Error::msg(e));
                }
                match outgoing_handler::Host::handle(&mut h, r, o) {
                    Ok(f) => {
                        ledger.attach(b, f.rep(), PER_REQUEST + moved);
                        Ok((Ok(f),))
                    }
                    Err(e) => {
                        // The request was consumed (deleted) either way.
                        b.release(PER_REQUEST + moved);
                        Ok((Err(e.downcast()?),))
                    }
                }
            },
        )?;
    }
    l.allow_shadowing(false);
    Ok(())
}
