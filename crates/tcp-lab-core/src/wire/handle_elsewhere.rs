//! The wire's handle where slow motion cannot run: the same methods, never started (its TUN
//! devices, [`crate::hosts::Tuns`], cannot exist here).

use std::io;
use std::time::Duration;

use tokio::sync::mpsc;

use super::fault::{FaultKind, Rule};
use super::{WireMsg, WireSettings};
use crate::model::Side;

pub enum Wire {}

impl Wire {
    pub fn start(
        tuns: crate::hosts::Tuns,
        _: WireSettings,
        _: mpsc::Sender<WireMsg>,
    ) -> io::Result<Wire> {
        match tuns {}
    }
    pub fn set_delay(&self, _: Duration) {
        match *self {}
    }
    pub fn set_loss(&self, _: f64) {
        match *self {}
    }
    pub fn set_step_mode(&self, _: bool) {
        match *self {}
    }
    pub fn release_next(&self) {
        match *self {}
    }
    pub fn release_all(&self) {
        match *self {}
    }
    pub fn arm(&self, _: Rule) {
        match *self {}
    }
    pub fn on_held(&self, _: FaultKind) {
        match *self {}
    }
    pub fn rst(&self, _: Side) {
        match *self {}
    }
    pub fn blackhole(&self, _: Side, _: Duration) {
        match *self {}
    }
    pub fn annotate(&self, _: String, _: Option<(Side, u8)>) {
        match *self {}
    }
}
