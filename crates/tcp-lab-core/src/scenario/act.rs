//! Carrying out a step's action on the lab or the wire, and what its end looks like: the lab
//! event that says it is done, or the time it takes. A new action is a variant of [`Action`]
//! (read in `action.rs`) and an arm of [`begin`] here; `run` and lessons get it both.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Action, no_client_opened, no_client_yet};
use crate::i18n::Said;
use crate::lab::bulk::FlowChange;
use crate::lab::{Command, EventKind};
use crate::model::{ConnId, Side};
use crate::session::Session;

/// How long a policy change is waited for before the step goes on anyway.
const POLICY_WAIT: Duration = Duration::from_millis(200);

/// What ends an action that has been started.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Wait {
    /// Done as soon as it was given (a wire fault, a background connect).
    Nothing,
    /// Done at this instant (`sleep`).
    Until(Instant),
    /// A connect: done once it connected and, with the lab's server, the server accepted it.
    Connect {
        id: ConnId,
        connected: bool,
        accepted: bool,
    },
    /// A connect begun in an earlier step: its outcome, whenever it came.
    Connected(ConnId),
    /// A send: done when the client has the reply (or the server's message).
    Reply(ConnId),
    /// A half-close, close or abort: done when the lab made the call.
    Called(Side, ConnId),
    /// A policy change: done when the lab says so, or after [`POLICY_WAIT`] regardless.
    Policy(Instant),
    /// A bulk send or a change of reading: done when the side's connection tells this change.
    Flow(Side, ConnId, FlowEnd),
}

/// Which flow change ends a [`Wait::Flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlowEnd {
    BulkStarted,
    BulkDone,
    Paused,
    Resumed,
}

impl FlowEnd {
    fn is(self, c: &FlowChange) -> bool {
        matches!(
            (self, c),
            (FlowEnd::BulkStarted, FlowChange::BulkStarted { .. })
                | (FlowEnd::BulkDone, FlowChange::BulkDone { .. })
                | (FlowEnd::Paused, FlowChange::Paused)
                | (FlowEnd::Resumed, FlowChange::Resumed)
        )
    }
}

/// The clients a scenario has connected, by name, and what became of their connects.
#[derive(Debug, Default)]
pub(super) struct Clients {
    pub by_name: HashMap<String, ConnId>,
    /// Each connect's outcome, once the lab told it.
    pub outcomes: HashMap<ConnId, Result<(), Said>>,
}

impl Clients {
    pub fn get(&self, name: &str) -> Result<ConnId, Said> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| no_client_yet(name))
    }

    /// Learns the outcome of one of the scenario's connects from a lab event (connections
    /// opened by hand meanwhile are not kept).
    pub fn learn(&mut self, k: &EventKind) {
        let (conn, outcome) = match k {
            EventKind::Connected { conn, .. } => (conn, Ok(())),
            EventKind::ConnectFailed { conn, error, .. } => (conn, Err(error.clone())),
            _ => return,
        };
        if self.by_name.values().any(|c| c == conn) {
            self.outcomes.insert(*conn, outcome);
        }
    }
}

/// Gives the lab (or the wire) the action of client `name`'s step; what ends it.
pub(super) fn begin(
    a: &Action,
    name: &str,
    clients: &mut Clients,
    s: &mut Session,
    now: Instant,
) -> Result<Wait, Said> {
    let lab = s.lab.clone();
    Ok(match a {
        Action::Connect | Action::ConnectInBackground => {
            let id = lab.command(Command::Connect).ok_or_else(no_client_opened)?;
            clients.by_name.insert(name.to_string(), id);
            if *a == Action::ConnectInBackground {
                return Ok(Wait::Nothing);
            }
            Wait::Connect {
                id,
                connected: false,
                accepted: lab.listen_addr().is_none(),
            }
        }
        Action::Connected => Wait::Connected(clients.get(name)?),
        Action::Send(side, text) => {
            let id = clients.get(name)?;
            lab.command(Command::Send {
                side: *side,
                conn: id,
                text: text.clone(),
            });
            Wait::Reply(id)
        }
        Action::HalfClose(side) | Action::Close(side) | Action::Abort(side) => {
            let (side, conn) = (*side, clients.get(name)?);
            lab.command(match a {
                Action::HalfClose(_) => Command::HalfClose { side, conn },
                Action::Close(_) => Command::Close { side, conn },
                _ => Command::Abort { side, conn },
            });
            Wait::Called(side, conn)
        }
        Action::Policy(p) => {
            lab.command(Command::SetPolicy(*p));
            Wait::Policy(crate::model::after(now, POLICY_WAIT))
        }
        Action::Sleep(d) => Wait::Until(crate::model::after(now, *d)),
        Action::Fault(rule) => {
            wire(s)?.arm(rule.clone());
            Wait::Nothing
        }
        Action::Rst(toward) => {
            wire(s)?.rst(*toward);
            Wait::Nothing
        }
        Action::Blackhole(from, d) => {
            wire(s)?.blackhole(*from, *d);
            Wait::Nothing
        }
        Action::Bulk {
            side,
            bytes,
            background,
        } => {
            let (side, conn) = (*side, clients.get(name)?);
            lab.send_bulk(side, conn, *bytes);
            let end = if *background {
                FlowEnd::BulkStarted
            } else {
                FlowEnd::BulkDone
            };
            Wait::Flow(side, conn, end)
        }
        Action::Reading(side, on) => {
            let (side, conn) = (*side, clients.get(name)?);
            lab.command(Command::Reading {
                side,
                conn,
                on: *on,
            });
            let end = if *on {
                FlowEnd::Resumed
            } else {
                FlowEnd::Paused
            };
            Wait::Flow(side, conn, end)
        }
    })
}

/// Slow motion's wire, which `wire.*` actions need.
fn wire(s: &Session) -> Result<&crate::wire::Wire, Said> {
    s.wire
        .as_ref()
        .ok_or_else(|| crate::said!("run.wire_needs_slow"))
}

impl Wait {
    /// A lab event told after the action began: the action's outcome, when it decides it.
    pub fn on_event(&mut self, k: &EventKind) -> Option<Result<(), Said>> {
        match (self, k) {
            (Wait::Connect { id, .. }, EventKind::ConnectFailed { conn, error, .. })
                if conn == id =>
            {
                Some(Err(error.clone()))
            }
            (
                Wait::Connect {
                    id,
                    connected,
                    accepted,
                },
                _,
            ) => {
                match k {
                    EventKind::Connected { conn, .. } if conn == id => *connected = true,
                    EventKind::Accepted { conn, .. } if conn == id => *accepted = true,
                    _ => {}
                }
                (*connected && *accepted).then_some(Ok(()))
            }
            (Wait::Reply(id), k) => match k {
                EventKind::FrameReceived {
                    side: Side::Client,
                    conn,
                    ..
                } if conn == id => Some(Ok(())),
                EventKind::FramesFolded {
                    side: Side::Client,
                    conn,
                    received,
                    ..
                } if conn == id && *received > 0 => Some(Ok(())),
                EventKind::SendRefused { conn, error, .. } if conn == id => {
                    Some(Err(crate::error::Localized::said(error)))
                }
                EventKind::Refused { text } => Some(Err(text.clone())),
                _ => None,
            },
            (Wait::Called(side, id), k) => match k {
                EventKind::ShutdownCalled { side: s, conn }
                | EventKind::CloseCalled { side: s, conn, .. }
                | EventKind::AbortCalled { side: s, conn }
                    if s == side && conn == id =>
                {
                    Some(Ok(()))
                }
                EventKind::Refused { text } => Some(Err(text.clone())),
                _ => None,
            },
            (Wait::Policy(_), EventKind::PolicyChanged(_)) => Some(Ok(())),
            (Wait::Flow(side, id, end), k) => match k {
                EventKind::Flow {
                    side: s,
                    conn,
                    change,
                } if s == side && conn == id && end.is(change) => Some(Ok(())),
                EventKind::Refused { text } => Some(Err(text.clone())),
                _ => None,
            },
            _ => None,
        }
    }

    /// The outcome the clock (or a connect's outcome told earlier) gives at `now`, the action
    /// having begun with at most `limit` to take.
    pub fn on_time(
        &self,
        clients: &Clients,
        now: Instant,
        deadline: Instant,
        limit: Duration,
    ) -> Option<Result<(), Said>> {
        let slow = |key: &str| {
            let secs = limit.as_secs_f64();
            Err(crate::said!(key, secs = secs))
        };
        match self {
            Wait::Nothing => Some(Ok(())),
            Wait::Until(t) | Wait::Policy(t) => (now >= *t).then_some(Ok(())),
            Wait::Connected(id) => match clients.outcomes.get(id) {
                Some(o) => Some(o.clone()),
                None => (now >= deadline).then(|| slow("run.connect_slow")),
            },
            Wait::Connect { .. } => (now >= deadline).then(|| slow("run.connect_slow")),
            Wait::Reply(_) => (now >= deadline).then(|| slow("run.no_reply")),
            Wait::Called(..) | Wait::Flow(..) => {
                (now >= deadline).then(|| slow("run.command_slow"))
            }
        }
    }
}
