//! What a key press does to the dashboard's [`App`]: the one keymap, the lab's commands it asks
//! for, and the keys `tcp-lab watch` answers.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rust_i18n::t;

use super::*;

impl App {
    pub fn key(&mut self, k: KeyEvent, snap: Option<&Snapshot>, now: Instant) -> Action {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            crate::signal::received(crate::signal::SIGINT);
            self.quit = true;
            return Action::None;
        }
        if let Some(input) = self.input.as_mut() {
            match k.code {
                KeyCode::Enter => {
                    let text = input.value().to_string();
                    self.input = None;
                    let side = self.input_side;
                    return self.on_conn(side, now, |conn| Command::Send { side, conn, text });
                }
                KeyCode::Esc => self.input = None,
                _ => {
                    use tui_input::backend::crossterm::EventHandler;
                    input.handle_event(&crossterm::event::Event::Key(k));
                    self.keep_within_a_frame(&k, now);
                }
            }
            return Action::None;
        }
        if self.help {
            // j/k and the arrows scroll a help taller than the screen; q quits; any other key closes.
            match k.code {
                KeyCode::Down | KeyCode::Char('j') | KeyCode::PageDown => {
                    self.help_scroll = self.help_scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                    self.help_scroll = self.help_scroll.saturating_sub(1)
                }
                KeyCode::Char('q') => self.quit = true,
                _ => self.help = false,
            }
            return Action::None;
        }
        if self.detail.is_some() {
            // The whole line is on screen; any key puts it away (q still quits).
            self.detail = None;
            if k.code != KeyCode::Char('q') {
                return Action::None;
            }
        }
        // A watch only looks: no key may reach the watched service (c once connected to it)
        // or pretend to drive a lab that is not there.
        if self.settings.watch_only && self.replay.is_none() && !watch_key(k.code) {
            self.say(t!("flash.watch_only_key"), now);
            return Action::None;
        }
        if let KeyCode::Char(d @ '1'..='9') = k.code
            && self.packet_quiz.as_ref().is_some_and(|q| q.waiting())
        {
            return Action::PacketAnswer(d as usize - '0' as usize);
        }
        if let Some(l) = self.lesson.as_mut() {
            match k.code {
                KeyCode::Char(' ') => return Action::LessonNext,
                KeyCode::Right => {
                    return if l.forward() {
                        Action::None
                    } else {
                        Action::LessonNext
                    };
                }
                KeyCode::Left => {
                    l.back();
                    return Action::None;
                }
                KeyCode::Char(d @ '1'..='9') if l.asking.is_some() => {
                    return Action::LessonAnswer(d as usize - '0' as usize);
                }
                _ => {}
            }
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => {
                self.help = true;
                self.help_scroll = 0;
            }
            KeyCode::Enter if self.focus == Pane::Timeline => {
                self.detail = Some(self.scroll.min(self.timeline_most.get()))
            }
            KeyCode::Char('g') => self.graph = self.graph.next(),
            KeyCode::Esc if self.graph != crate::tui::graph::GraphView::Off => {
                self.graph = crate::tui::graph::GraphView::Off
            }
            KeyCode::Char(ch @ ('l' | 'L')) => {
                let side = if ch == 'L' {
                    Side::Server
                } else {
                    Side::Client
                };
                let bytes = crate::lab::bulk::DEFAULT_BULK;
                return self.on_conn(side, now, |conn| Command::SendBulk { side, conn, bytes });
            }
            KeyCode::Char('R') => {
                let Some(conn) = self.selected else {
                    self.say(self.no_selection(), now);
                    return Action::None;
                };
                if !self.settings.server {
                    self.say(t!("flash.server_not_ours"), now);
                    return Action::None;
                }
                // Toggle: a paused connection resumes, any other stops reading.
                let on = self.not_reading.remove(&conn);
                if !on {
                    self.not_reading.insert(conn);
                }
                self.say(
                    if on {
                        t!("flash.reading_resumed", conn = conn)
                    } else {
                        t!("flash.reading_stopped", conn = conn)
                    },
                    now,
                );
                return Action::Lab(Command::Reading {
                    side: Side::Server,
                    conn,
                    on,
                });
            }
            KeyCode::Char('v') if self.settings.slow.is_some() => {
                self.show_retransmissions = !self.show_retransmissions;
                self.say(
                    if self.show_retransmissions {
                        t!("flash.ladder_unfolded")
                    } else {
                        t!("flash.ladder_folded")
                    },
                    now,
                );
            }
            KeyCode::Char('c') => return Action::Lab(Command::Connect),
            KeyCode::Char(ch @ ('s' | 'S')) => {
                let side = if ch == 'S' {
                    Side::Server
                } else {
                    Side::Client
                };
                if self.selected.is_none() {
                    self.say(self.no_selection(), now);
                } else if side == Side::Server && !self.settings.server {
                    self.say(t!("flash.server_not_ours"), now);
                } else {
                    self.input_side = side;
                    self.input = Some(tui_input::Input::new(DEFAULT_MESSAGE.to_string()));
                    self.input_len.set(None);
                }
            }
            KeyCode::Char(ch @ ('x' | 'X' | 'h' | 'H' | 'a' | 'A')) => {
                // Lower case acts on the client side, upper case on the server side.
                let side = if ch.is_ascii_uppercase() {
                    Side::Server
                } else {
                    Side::Client
                };
                return self.on_conn(side, now, |conn| match ch.to_ascii_lowercase() {
                    'x' => Command::Close { side, conn },
                    'h' => Command::HalfClose { side, conn },
                    _ => Command::Abort { side, conn },
                });
            }
            KeyCode::Char('p') => {
                if !self.settings.server {
                    self.say(t!("flash.not_our_server"), now);
                    return Action::None;
                }
                self.policy = self.policy.next();
                let waiting = snap.map_or(0, |sn| {
                    sn.sockets
                        .iter()
                        .filter(|o| {
                            matches!(o.owner, Owner::Lab(Side::Server, _))
                                && o.row.state == crate::observe::TcpState::CloseWait
                        })
                        .count()
                });
                // Auto applies at once to sockets already waiting: say so before it happens.
                let what = match (self.policy, waiting) {
                    (ClosePolicy::Auto, 0) => t!("flash.policy_auto"),
                    (ClosePolicy::Auto, n) => t!("flash.policy_auto_now", n = n),
                    (ClosePolicy::Never, _) => t!("flash.policy_never"),
                    (ClosePolicy::Manual, _) => t!("flash.policy_manual"),
                };
                self.say(what, now);
                return Action::Lab(Command::SetPolicy(self.policy));
            }
            KeyCode::Char('e') => return Action::Export,
            KeyCode::Char(
                ch @ ('+' | '=' | '-' | 't' | ' ' | 'w' | 'r' | 'd' | 'u' | 'o' | 'm' | 'z' | 'Z'
                | 'b' | 'B'),
            ) => {
                if self.settings.slow.is_none() {
                    let why = self
                        .settings
                        .slow_unavailable
                        .clone()
                        .unwrap_or_else(|| t!("flash.slow_off").into());
                    self.say(why, now);
                    return Action::None;
                }
                return match ch {
                    '+' | '=' => Action::Wire(WireKey::Slower),
                    '-' => Action::Wire(WireKey::Faster),
                    't' => Action::Wire(WireKey::ToggleStep),
                    ' ' => Action::Wire(WireKey::Release),
                    'r' => Action::Wire(WireKey::ReleaseAll),
                    'd' => Action::Wire(WireKey::Fault(FaultKind::Drop)),
                    'u' => Action::Wire(WireKey::Fault(FaultKind::Dup)),
                    'o' => Action::Wire(WireKey::Fault(FaultKind::Delay(Duration::ZERO))),
                    'm' => Action::Wire(WireKey::Fault(FaultKind::Corrupt)),
                    'z' => Action::Wire(WireKey::Rst(Side::Client)),
                    'Z' => Action::Wire(WireKey::Rst(Side::Server)),
                    'b' => Action::Wire(WireKey::Blackhole(Side::Client)),
                    'B' => Action::Wire(WireKey::Blackhole(Side::Server)),
                    _ => Action::Pcap,
                };
            }
            KeyCode::Tab => {
                let panes = self.panes();
                let i = panes.iter().position(|p| *p == self.focus).unwrap_or(0);
                self.focus = panes[(i + 1) % panes.len()];
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_sel(snap, -1),
            KeyCode::Down | KeyCode::Char('j') => self.move_sel(snap, 1),
            KeyCode::PageUp | KeyCode::PageDown if self.focus == Pane::Lesson => {
                if let Some(l) = self.lesson.as_mut() {
                    let page = l.page();
                    l.scroll_by(if k.code == KeyCode::PageUp {
                        -page
                    } else {
                        page
                    });
                }
            }
            KeyCode::PageUp if self.focus == Pane::Messages => {
                self.msg_scroll = self.msg_scroll.saturating_add(10)
            }
            KeyCode::PageDown if self.focus == Pane::Messages => {
                self.msg_scroll = self.msg_scroll.saturating_sub(10)
            }
            KeyCode::PageUp => self.scroll_timeline(10),
            KeyCode::PageDown => self.scroll_timeline(-10),
            KeyCode::End => {
                self.scroll = 0;
                self.msg_scroll = 0;
            }
            _ => {}
        }
        Action::None
    }

    fn on_conn(&mut self, side: Side, now: Instant, f: impl FnOnce(ConnId) -> Command) -> Action {
        match self.selected {
            Some(conn) => {
                if side == Side::Server && !self.settings.server {
                    self.say(t!("flash.server_not_ours"), now);
                    return Action::None;
                }
                Action::Lab(f(conn))
            }
            None => {
                self.say(self.no_selection(), now);
                Action::None
            }
        }
    }

    /// What to press when nothing is selected: c, or a lesson's next step.
    fn no_selection(&self) -> String {
        if self.lesson.is_some() {
            t!("flash.no_selection_lesson").into_owned()
        } else {
            t!("flash.no_selection").into_owned()
        }
    }
}

/// The keys `tcp-lab watch` answers (its help lists exactly these): moving, reading, exporting.
fn watch_key(k: KeyCode) -> bool {
    matches!(
        k,
        KeyCode::Char('q' | '?' | 'e' | 'j' | 'k')
            | KeyCode::Enter
            | KeyCode::Tab
            | KeyCode::Up
            | KeyCode::Down
            | KeyCode::PageUp
            | KeyCode::PageDown
            | KeyCode::Home
            | KeyCode::End
    )
}
